-- Argo CD resource action "retry": asks the operator to retry the rollout (no spec edit, so no drift).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["wallbounce.dev/action"] = "retry"
return obj
