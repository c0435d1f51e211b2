{{/* Names, labels and shared snippets of the coalmine chart. */}}

{{- define "coalmine.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: "<release>-coalmine", or just the release when it already says coalmine. */}}
{{- define "coalmine.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "coalmine.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coalmine.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "coalmine.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "coalmine.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coalmine
{{- end }}

{{- define "coalmine.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "coalmine.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "coalmine.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The operator's RBAC rules, from the file the operator's integration tests also use, so what
is tested is what ships. Split in two for the namespaced mode: rules on cluster-scoped
resources (CRDs, namespaces) can only be granted by a ClusterRole.
*/}}
{{- define "coalmine.rules" -}}
{{- $rules := .Files.Get "files/operator-rules.yaml" | fromYamlArray }}
{{- if not $rules }}
{{- fail "files/operator-rules.yaml is missing or empty: the operator's RBAC rules live there" }}
{{- end }}
{{- $cluster := list }}
{{- $namespaced := list }}
{{- range $rule := $rules }}
{{- $isCluster := false }}
{{- range $rule.resources }}
{{- if has . (list "customresourcedefinitions" "namespaces") }}{{ $isCluster = true }}{{ end }}
{{- end }}
{{- if $isCluster }}{{ $cluster = append $cluster $rule }}{{ else }}{{ $namespaced = append $namespaced $rule }}{{ end }}
{{- end }}
{{- toYaml (dict "cluster" $cluster "namespaced" $namespaced "all" $rules) }}
{{- end }}
