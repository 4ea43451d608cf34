-- Argo CD health check for wallbounce.dev/WallBounceRollout (status: docs/operator-contract.md).
-- Progressing while stepping or Holding, Suspended when Paused, Degraded when RolledBack or Aborted,
-- Healthy when Completed; the message gives the step, the canary weight and the last verdict.
local function num(x)
  if type(x) == "number" and math.floor(x) == x then
    return string.format("%d", x)
  end
  return tostring(x)
end

local hs = {}
if obj.status == nil or obj.status.phase == nil or obj.status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a phase"
  return hs
end

local st = obj.status
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and st.observedGeneration ~= nil and st.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. num(generation)
  return hs
end

local parts = {}
if st.step ~= nil and st.steps ~= nil then
  table.insert(parts, "step " .. num(st.step) .. "/" .. num(st.steps))
end
if st.weight ~= nil then
  table.insert(parts, "canary weight " .. num(st.weight) .. "%")
end
if st.analysis ~= nil and st.analysis.verdict ~= nil then
  local verdict = "last verdict " .. st.analysis.verdict
  if st.analysis.reason ~= nil and st.analysis.reason ~= "" then
    verdict = verdict .. " (" .. st.analysis.reason .. ")"
  end
  table.insert(parts, verdict)
end

local phase = st.phase
local message = phase
if #parts > 0 then
  message = message .. ": " .. table.concat(parts, ", ")
end
if phase == "Paused" and st.pauseReason ~= nil and st.pauseReason ~= "" then
  message = message .. "; paused: " .. st.pauseReason
end
if st.message ~= nil and st.message ~= "" then
  message = message .. " - " .. st.message
end
hs.message = message

if phase == "Completed" then
  hs.status = "Healthy"
elseif phase == "Progressing" or phase == "Holding" then
  hs.status = "Progressing"
elseif phase == "Paused" then
  hs.status = "Suspended"
elseif phase == "RolledBack" or phase == "Aborted" then
  hs.status = "Degraded"
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. phase
end
return hs
