{{/* The base name of every object: the release name when it already says landlord, else <release>-landlord. */}}
{{- define "landlord.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object: deploy/'s, plus Helm's own. */}}
{{- define "landlord.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/part-of: landlord
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The pods of the operator, as deploy/ selects them (selectors are immutable: keep them as they are). */}}
{{- define "landlord.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/*
What the operator does in the namespaces it watches: a ClusterRole without watchNamespace, a Role in that
namespace with it. tests/chart.rs pins these rules to deploy/rbac.yaml and deploy/overlays/namespaced.
*/}}
{{- define "landlord.watchedNamespaceRules" -}}
# Its own resources: watched, finalizers added and removed (patch).
- apiGroups: [tenancy.landlord.dev]
  resources: [tenants, modulerollouts]
  verbs: [get, list, watch, patch, update]
# The same for installations, which a ModuleRollout also creates (server-side apply) and deletes.
- apiGroups: [tenancy.landlord.dev]
  resources: [moduleinstallations]
  verbs: [get, list, watch, create, patch, update, delete]
# Conditions, counts and observedGeneration, written through the status subresource of each kind.
- apiGroups: [tenancy.landlord.dev]
  resources: [tenants/status, moduleinstallations/status, modulerollouts/status]
  verbs: [get, patch, update]
# Owner references with blockOwnerDeletion on the Secrets and installations it writes.
- apiGroups: [tenancy.landlord.dev]
  resources: [tenants/finalizers, moduleinstallations/finalizers, modulerollouts/finalizers]
  verbs: [update]
# The `<tenant>-db` credentials Secrets (server-side apply; watched by label; deleted with the Tenant).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, update, delete]
# Normal and Warning Events on the resources it reconciles.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/*
Cluster-wide in both modes: what is cluster-scoped. tests/chart.rs pins these rules to deploy/rbac.yaml and the
ClusterRole patch of deploy/overlays/namespaced.
*/}}
{{- define "landlord.clusterRules" -}}
# It waits for its own CRDs to be Established, and reads no other CRD.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames:
    - tenants.tenancy.landlord.dev
    - moduleinstallations.tenancy.landlord.dev
    - modulerollouts.tenancy.landlord.dev
    - databaseservers.tenancy.landlord.dev
  verbs: [get, list, watch]
# DatabaseServers are cluster-scoped: watched, finalizer added and removed (patch); never created or deleted.
- apiGroups: [tenancy.landlord.dev]
  resources: [databaseservers]
  verbs: [get, list, watch, patch, update]
# A server's tenant count, version, template and conditions, through its status subresource.
- apiGroups: [tenancy.landlord.dev]
  resources: [databaseservers/status]
  verbs: [get, patch, update]
# The finalizer that holds a DatabaseServer's deletion while tenants remain.
- apiGroups: [tenancy.landlord.dev]
  resources: [databaseservers/finalizers]
  verbs: [update]
# The labels of a Tenant's namespace (one GET by name) when a DatabaseServer has a namespaceSelector.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
{{- end -}}
