-- Argo CD resource action "promote-full": asks the operator to promote the rollout to its last phase (no spec edit, so no drift).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["wallbounce.dev/action"] = "promote-full"
return obj
