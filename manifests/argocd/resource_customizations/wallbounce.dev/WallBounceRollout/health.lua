-- Argo CD health check for wallbounce.dev/WallBounceRollout (status: docs/operator-contract.md).
-- Progressing while stepping, Holding or Promoting; Suspended when Paused; Degraded when RollingBack (a Gradual
-- rollback), RolledBack, Aborted or Stalled (a passed progress deadline, a route it may not or cannot write);
-- Healthy when Completed or Promoted. The message gives the step, the canary weight and the last verdict.
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
if phase == "Paused" and st.pauseReasons ~= nil and #st.pauseReasons > 0 then
  message = message .. "; paused: " .. table.concat(st.pauseReasons, ", ")
elseif phase == "Paused" and st.pauseReason ~= nil and st.pauseReason ~= "" then
  message = message .. "; paused: " .. st.pauseReason
end
local stalled = nil
if st.conditions ~= nil then
  for _, c in ipairs(st.conditions) do
    if c.type == "Stalled" and c.status == "True" then
      stalled = c
    end
  end
end
if st.message ~= nil and st.message ~= "" then
  message = message .. " - " .. st.message
end
hs.message = message

if phase == "Completed" or phase == "Promoted" then
  hs.status = "Healthy"
elseif phase == "RollingBack" or phase == "RolledBack" or phase == "Aborted" then
  hs.status = "Degraded"
elseif stalled ~= nil then
  hs.status = "Degraded"
  hs.message = message .. "; stalled: " .. (stalled.reason or "") .. " " .. (stalled.message or "")
elseif phase == "Progressing" or phase == "Holding" or phase == "Promoting" then
  hs.status = "Progressing"
elseif phase == "Paused" then
  hs.status = "Suspended"
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. phase
end
return hs
