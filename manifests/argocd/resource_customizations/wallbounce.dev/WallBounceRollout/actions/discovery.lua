-- Argo CD resource actions for wallbounce.dev/WallBounceRollout: which ones apply in the current phase.
-- Each action only sets the annotation wallbounce.dev/action; the operator performs it and removes it.
local phase = ""
if obj.status ~= nil and obj.status.phase ~= nil then
  phase = obj.status.phase
end
local running = phase == "" or phase == "Progressing" or phase == "Holding"
-- abort applies wherever the canary may carry traffic (Completed below 100 % and Promoting included)
local finished = phase == "Promoted" or phase == "RolledBack" or phase == "Aborted"
local pausedInGit = obj.spec ~= nil and obj.spec.paused == true

local actions = {}
actions["pause"] = {["disabled"] = not running, ["iconClass"] = "fa fa-fw fa-pause-circle"}
actions["resume"] = {["disabled"] = phase ~= "Paused" or pausedInGit, ["iconClass"] = "fa fa-fw fa-play-circle"}
actions["promote"] = {["disabled"] = not (running or phase == "Paused"), ["iconClass"] = "fa fa-fw fa-forward"}
actions["promote-full"] = {["disabled"] = not (running or phase == "Paused"), ["iconClass"] = "fa fa-fw fa-fast-forward"}
actions["abort"] = {["disabled"] = finished, ["iconClass"] = "fa fa-fw fa-times-circle"}
actions["retry"] = {["disabled"] = not (phase == "RolledBack" or phase == "Aborted"), ["iconClass"] = "fa fa-fw fa-redo"}
return actions
