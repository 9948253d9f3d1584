-- Argo CD health check for Landlord's Tenant, ModuleInstallation, ModuleRollout and DatabaseServer (group
-- tenancy.landlord.dev): the file name says which kind it is registered for. The four files are the same script,
-- because every kind summarizes itself in the Ready condition; tests/argocd_health.rs keeps them identical. Rules
-- and setup: README.md next to it.
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base and table libraries: no string.*, no math.*.

-- Ready=False/Unknown reasons that clear by themselves or wait on another object: keep waiting, no alarm.
local waiting = {
  Progressing = true,
  TenantNotReady = true,
  TenantNotFound = true,
  DependencyMissing = true,
  UninstallBlocked = true,
  DatabaseUnavailable = true,
  NoServerAvailable = true,
  ServerInUse = true,
  Moving = true,
}
-- Reasons that say the operator applies nothing on purpose (spec.paused, spec.dryRun).
local suspended = { Paused = true, DryRun = true }

local hs = {}
-- The API server always sets metadata.generation on custom resources; 0 only guards a hand-made object.
local generation = obj.metadata.generation or 0
local status = obj.status or {}

local ready = nil
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Ready" then
    ready = condition
  end
end

-- A status written for an older spec says nothing about the current one (kstatus's rule too).
local function stale(observed)
  return observed == nil or observed < generation
end

if ready == nil or stale(status.observedGeneration) or
    (ready.observedGeneration ~= nil and ready.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

hs.message = ready.message or ""
if ready.status == "True" then
  hs.status = "Healthy"
elseif waiting[ready.reason] then
  hs.status = "Progressing"
elseif suspended[ready.reason] then
  hs.status = "Suspended"
else
  -- InvalidSpec, SlugConflict, AdoptionRefused, DatabaseMissing, ModuleNotFound, VersionNotFound, MigrationFailed,
  -- ChecksumMismatch, IrreversibleMigration, DestructiveActionBlocked, a rollout's FailureBudgetExceeded,
  -- a Tenant's MoveFailed, and any reason added later: a person has to act.
  hs.status = "Degraded"
end
return hs
