{{- define "authproxy.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "authproxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "authproxy.injector" -}}
{{- printf "%s-injector" (include "authproxy.fullname" .) -}}
{{- end -}}

{{- define "authproxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "authproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "authproxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end -}}

{{- define "authproxy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "authproxy.tlsSecret" -}}
{{- printf "%s-tls" (include "authproxy.injector" .) -}}
{{- end -}}

{{- /* The DNS names the API server uses to reach the webhook Service. */ -}}
{{- define "authproxy.serviceDnsNames" -}}
{{- $svc := include "authproxy.injector" . -}}
{{- list (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) (printf "%s.%s" $svc .Release.Namespace) $svc | toJson -}}
{{- end -}}

{{- define "authproxy.nativeSidecar" -}}
{{- $v := .Values.sidecar.nativeSidecar | toString -}}
{{- if eq $v "auto" -}}
{{- semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version -}}
{{- else if or (eq $v "true") (eq $v "false") -}}
{{- $v -}}
{{- else -}}
{{- fail (printf "sidecar.nativeSidecar must be auto, true or false (got %q)" $v) -}}
{{- end -}}
{{- end -}}

{{- define "authproxy.settings" -}}
image: {{ include "authproxy.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
trustDomain: {{ .Values.trustDomain | quote }}
issuer: {{ .Values.issuer | quote }}
policiesConfigMap: {{ .Values.sidecar.policiesConfigMap | quote }}
nativeSidecar: {{ include "authproxy.nativeSidecar" . }}
runAsUser: {{ .Values.sidecar.runAsUser | int }}
certificates:
  source: {{ .Values.sidecar.certificates.source | quote }}
  secretName: {{ .Values.sidecar.certificates.secretName | quote }}
  csi:
    {{- toYaml .Values.sidecar.certificates.csi | nindent 4 }}
resources:
  {{- toYaml .Values.sidecar.resources | nindent 2 }}
{{- end -}}
