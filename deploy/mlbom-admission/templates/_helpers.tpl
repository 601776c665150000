{{/* The chart name, or nameOverride. */}}
{{- define "mlbom-admission.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the objects: fullnameOverride, else RELEASE when it contains the chart
name, else RELEASE-CHART. Truncated so that the derived names (-tls, -selfsigned) stay
within the 63 characters of a DNS label.
*/}}
{{- define "mlbom-admission.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* CHART-VERSION, for the helm.sh/chart label. */}}
{{- define "mlbom-admission.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels of every object. */}}
{{- define "mlbom-admission.labels" -}}
helm.sh/chart: {{ include "mlbom-admission.chart" . }}
{{ include "mlbom-admission.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: mlbom
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The labels that select the webhook pods (never change them: selectors are immutable). */}}
{{- define "mlbom-admission.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlbom-admission.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mlbom-admission.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mlbom-admission.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* REPOSITORY@DIGEST when a digest is given, else REPOSITORY:TAG (tag default appVersion). */}}
{{- define "mlbom-admission.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "mlbom-admission.policyConfigMapName" -}}
{{- .Values.policy.existingConfigMap | default (printf "%s-policy" (include "mlbom-admission.fullname" .)) }}
{{- end }}

{{- define "mlbom-admission.certificateName" -}}
{{- printf "%s-serving" (include "mlbom-admission.fullname" .) }}
{{- end }}

{{/* The Secret with tls.crt and tls.key: cert-manager's, or the one given in tls.secretName. */}}
{{- define "mlbom-admission.tlsSecretName" -}}
{{- if .Values.certManager.enabled }}
{{- printf "%s-tls" (include "mlbom-admission.fullname" .) }}
{{- else }}
{{- required "certManager.enabled=false needs tls.secretName: a kubernetes.io/tls Secret for the webhook Service" .Values.tls.secretName }}
{{- end }}
{{- end }}

{{/* The names the serving certificate must hold: SERVICE, SERVICE.NAMESPACE, SERVICE.NAMESPACE.svc. */}}
{{- define "mlbom-admission.dnsNames" -}}
{{- $svc := include "mlbom-admission.fullname" . -}}
- {{ $svc }}
- {{ $svc }}.{{ .Release.Namespace }}
- {{ $svc }}.{{ .Release.Namespace }}.svc
- {{ $svc }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/* Annotations of the webhook configurations: cert-manager's CA injection and webhook.annotations. */}}
{{- define "mlbom-admission.webhookAnnotations" -}}
{{- $annotations := dict }}
{{- if .Values.certManager.enabled }}
{{- $_ := set $annotations "cert-manager.io/inject-ca-from" (printf "%s/%s" .Release.Namespace (include "mlbom-admission.certificateName" .)) }}
{{- end }}
{{- $annotations = merge $annotations .Values.webhook.annotations }}
{{- with $annotations -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
What the validating and mutating webhooks share: where the API server sends the request
(the path is the argument's .path), which namespaces and objects, and how it fails.
kube-system and the release namespace are never reviewed: the webhook must not stand in
the way of the cluster's own pods or of its own.
*/}}
{{- define "mlbom-admission.webhookCommon" -}}
{{- $ := .root -}}
admissionReviewVersions: ["v1"]
clientConfig:
  service:
    name: {{ include "mlbom-admission.fullname" $ }}
    namespace: {{ $.Release.Namespace }}
    path: {{ .path }}
    port: {{ $.Values.service.port }}
  {{- if not $.Values.certManager.enabled }}
  {{- $ca := required "certManager.enabled=false needs tls.caBundle: the base64 of the PEM CA certificate of tls.secretName" $.Values.tls.caBundle }}
  {{- if not (contains "-----BEGIN CERTIFICATE-----" (b64dec $ca)) }}
  {{- fail "tls.caBundle must be the base64 of a PEM certificate (-----BEGIN CERTIFICATE-----)" }}
  {{- end }}
  caBundle: {{ $ca | quote }}
  {{- end }}
failurePolicy: {{ $.Values.webhook.failurePolicy }}
matchPolicy: Equivalent
sideEffects: NoneOnDryRun
timeoutSeconds: {{ $.Values.webhook.timeoutSeconds }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- toYaml (concat (list "kube-system" $.Release.Namespace) $.Values.webhook.excludeNamespaces | uniq) | nindent 8 }}
    {{- with $.Values.webhook.namespaceSelectorExpressions }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- with $.Values.webhook.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $.Values.webhook.matchConditions }}
matchConditions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The container's arguments: exactly the flags of
  mlbom admission serve --policy POLICY [--store STORE ...] --tls-cert CERT --tls-key KEY
                        [--host HOST] --port PORT --metrics-port PORT
then extraArgs.
*/}}
{{- define "mlbom-admission.args" -}}
- admission
- serve
- --policy
- /etc/mlbom/policy.yaml
{{- range .Values.stores }}
- --store
{{- if .url }}
- {{ .url | quote }}
{{- else }}
- {{ include "mlbom-admission.storeMountPath" . | quote }}
{{- end }}
{{- end }}
- --tls-cert
- /var/run/secrets/mlbom/tls/tls.crt
- --tls-key
- /var/run/secrets/mlbom/tls/tls.key
{{- with .Values.server.host }}
- --host
- {{ . | quote }}
{{- end }}
- --port
- {{ .Values.server.port | quote }}
- --metrics-port
- {{ .Values.server.metricsPort | quote }}
{{- if .Values.placement.discover }}
- --discover
{{- end }}
{{- if .Values.scan.enabled }}
- --scan-interval
- {{ .Values.scan.intervalSeconds | quote }}
{{- end }}
{{- with .Values.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Where a folder store (an item of .Values.stores) is mounted. */}}
{{- define "mlbom-admission.storeMountPath" -}}
{{- .mountPath | default (printf "/var/lib/mlbom/stores/%s" .name) }}
{{- end }}

{{/* The volume source of a folder store: the one of persistentVolumeClaim, configMap, secret, emptyDir it gives. */}}
{{- define "mlbom-admission.storeVolumeSource" -}}
{{- $sources := list }}
{{- range $key := list "persistentVolumeClaim" "configMap" "secret" "emptyDir" }}
{{- if hasKey $.store $key }}
{{- $sources = append $sources $key }}
{{- end }}
{{- end }}
{{- if ne (len $sources) 1 }}
{{- fail (printf "stores: %q needs a url, or exactly one of persistentVolumeClaim, configMap, secret, emptyDir" ($.store.name | default "(unnamed)")) }}
{{- end }}
{{- $key := first $sources }}
{{- $source := get $.store $key | default dict }}
{{- if eq $key "persistentVolumeClaim" }}
{{- $source = merge (dict "readOnly" (include "mlbom-admission.storeReadOnly" $.store | eq "true")) $source }}
{{- end }}
{{- dict $key $source | toYaml }}
{{- end }}

{{/* "true" unless the store says readOnly: false; an emptyDir store is writable unless it says readOnly: true. */}}
{{- define "mlbom-admission.storeReadOnly" -}}
{{- if hasKey . "readOnly" }}
{{- .readOnly }}
{{- else }}
{{- not (hasKey . "emptyDir") }}
{{- end }}
{{- end }}
