-- Argo CD resource action "promote": asks the operator to promote the rollout to its next phase (no spec edit, so no drift).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["wallbounce.dev/action"] = "promote"
return obj
