-- Argo CD resource action "resume": asks the operator to resume the rollout (no spec edit, so no drift).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["wallbounce.dev/action"] = "resume"
return obj
