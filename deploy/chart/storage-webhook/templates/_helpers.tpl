{{/* Labels of every object: the kustomize base's, and Helm's. */}}
{{- define "storage-webhook.labels" -}}
app.kubernetes.io/name: storage-webhook
app.kubernetes.io/part-of: storage-webhook
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The Secret the pods mount. */}}
{{- define "storage-webhook.tlsSecret" -}}
{{- if eq .Values.certificate.source "secret" -}}
{{ required "certificate.secret.name is required when certificate.source is secret" .Values.certificate.secret.name }}
{{- else -}}
storage-webhook-tls
{{- end }}
{{- end }}

{{/*
The generated CA and serving certificate (certificate.source generate), as YAML of base64
values. An existing Secret is reused, so an upgrade keeps the certificate; helm template (no
cluster) always makes a new one.
*/}}
{{- define "storage-webhook.generatedTLS" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace "storage-webhook-tls" }}
{{- if and $existing (index $existing.data "ca.crt") }}
caBundle: {{ index $existing.data "ca.crt" }}
cert: {{ index $existing.data "tls.crt" }}
key: {{ index $existing.data "tls.key" }}
{{- else }}
{{- $days := int .Values.certificate.generate.validityDays }}
{{- $ca := genCA "storage-webhook-ca" $days }}
{{- $svc := printf "storage-webhook.%s.svc" .Release.Namespace }}
{{- $cert := genSignedCert $svc nil (list $svc (printf "%s.cluster.local" $svc)) $days $ca }}
caBundle: {{ $ca.Cert | b64enc }}
cert: {{ $cert.Cert | b64enc }}
key: {{ $cert.Key | b64enc }}
{{- end }}
{{- end }}

{{/* The Secret holding the client CA (clientAuth): an existing one, or the chart's from caBundle. */}}
{{- define "storage-webhook.clientCASecret" -}}
{{- $c := .Values.clientAuth }}
{{- if and $c.caSecret $c.caBundle }}
{{- fail "clientAuth: set caSecret or caBundle, not both" }}
{{- else if $c.caSecret }}
{{- $c.caSecret }}
{{- else if $c.caBundle }}
{{- "storage-webhook-client-ca" }}
{{- else }}
{{- fail "clientAuth.caSecret or clientAuth.caBundle is required when clientAuth.enabled is true" }}
{{- end }}
{{- end }}
