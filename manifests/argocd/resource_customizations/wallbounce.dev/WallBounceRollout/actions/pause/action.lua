-- Argo CD resource action "pause": asks the operator to pause the rollout (no spec edit, so no drift).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["wallbounce.dev/action"] = "pause"
return obj
