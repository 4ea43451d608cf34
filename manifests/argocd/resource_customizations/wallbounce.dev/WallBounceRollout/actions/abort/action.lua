-- Argo CD resource action "abort": asks the operator to abort the rollout (no spec edit, so no drift).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["wallbounce.dev/action"] = "abort"
return obj
