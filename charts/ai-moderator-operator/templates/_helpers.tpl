{{- define "aimod.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aimod.labels" -}}
app.kubernetes.io/name: ai-moderator-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "aimod.selector" -}}
app.kubernetes.io/name: ai-moderator-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aimod.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "aimod.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}
