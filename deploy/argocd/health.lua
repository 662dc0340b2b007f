-- Argo CD health check for moderation.ai-moderator.io/ModerationStack.
-- Ready -> Healthy; Pending/Migrating/Progressing/Deleting -> Progressing;
-- Degraded -> Degraded; Paused -> Suspended; a status that has not yet
-- observed the latest generation -> Progressing.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the ai-moderator operator to report status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local message = ""
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" and condition.message ~= nil then
      message = condition.message
    end
  end
end
local phase = obj.status.phase
if phase == "Ready" then
  hs.status = "Healthy"
elseif phase == "Pending" or phase == "Migrating" or phase == "Progressing" or phase == "Deleting" then
  hs.status = "Progressing"
elseif phase == "Degraded" then
  hs.status = "Degraded"
elseif phase == "Paused" then
  hs.status = "Suspended"
else
  hs.status = "Unknown"
end
hs.message = message
return hs
