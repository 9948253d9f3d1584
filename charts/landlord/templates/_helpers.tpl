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

{{/* Cluster-wide in both modes: it waits for its own CRDs to be Established, and reads no other CRD. */}}
{{- define "landlord.crdRule" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames:
    - tenants.tenancy.landlord.dev
    - moduleinstallations.tenancy.landlord.dev
    - modulerollouts.tenancy.landlord.dev
  verbs: [get, list, watch]
{{- end -}}
