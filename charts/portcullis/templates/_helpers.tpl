{{/* Chart name, overridable. */}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: the release name, plus the chart name unless it is already in it. */}}
{{- define "portcullis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: portcullis
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "provider"). */}}
{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects. */}}
{{- define "portcullis.componentLabels" -}}
{{ include "portcullis.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "portcullis.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "portcullis.controller.serviceAccountName" -}}
{{- default (printf "%s-controller" (include "portcullis.fullname" .)) .Values.controller.serviceAccount.name -}}
{{- end -}}

{{- define "portcullis.provider.serviceAccountName" -}}
{{- default (printf "%s-provider" (include "portcullis.fullname" .)) .Values.provider.serviceAccount.name -}}
{{- end -}}

{{- define "portcullis.redis.fullname" -}}
{{- printf "%s-redis" (include "portcullis.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret holding the bundled Redis's password (key redis-password). */}}
{{- define "portcullis.redis.secretName" -}}
{{- default (include "portcullis.redis.fullname" .) .Values.redis.bundled.existingSecret -}}
{{- end -}}

{{/* The issuer: the value, else https://<ingress host>, else the in-cluster Service URL. */}}
{{- define "portcullis.issuer" -}}
{{- if .Values.issuer -}}
{{- .Values.issuer | trimSuffix "/" -}}
{{- else if and .Values.provider.ingress.enabled .Values.provider.ingress.host -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.provider.ingress.tls.enabled) .Values.provider.ingress.host -}}
{{- else -}}
{{- printf "http://%s.%s.svc.cluster.local:%d" (include "portcullis.fullname" .) .Release.Namespace (int .Values.provider.service.port) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the controller watches for OidcClients, as the --watch-namespaces argument. */}}
{{- define "portcullis.watchNamespaces" -}}
{{- if .Values.controller.watchNamespaces -}}
{{- join "," .Values.controller.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "portcullis.clusterWide" -}}
{{- if has "*" .Values.controller.watchNamespaces -}}true{{- end -}}
{{- end -}}

{{/*
Environment shared by the controller and the provider: namespace, Redis (the URL is built
from a Secret so that no password appears in the pod spec or in arguments), logs, tracing.
*/}}
{{- define "portcullis.env" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if .Values.redis.external.url }}
{{- if .Values.redis.external.usernameKey }}
- name: REDIS_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.usernameKey }}
{{- end }}
{{- if .Values.redis.external.passwordKey }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.passwordKey }}
{{- end }}
{{- $parts := splitn "://" 2 .Values.redis.external.url }}
{{- $credentials := "" }}
{{- if .Values.redis.external.passwordKey }}
{{- $credentials = printf "%s:$(REDIS_PASSWORD)@" (ternary "$(REDIS_USERNAME)" "" (not (empty .Values.redis.external.usernameKey))) }}
{{- end }}
- name: PORTCULLIS_REDIS_URL
  value: {{ printf "%s://%s%s" $parts._0 $credentials $parts._1 | quote }}
{{- else }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "portcullis.redis.secretName" . }}
      key: redis-password
- name: PORTCULLIS_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "portcullis.redis.fullname" .) | quote }}
{{- end }}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
{{- if .Values.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otlpEndpoint | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Prometheus scrape annotations for the metrics port. */}}
{{- define "portcullis.scrapeAnnotations" -}}
{{- if .Values.monitoring.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: "9090"
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/* Default topology spread: across nodes, best effort. Call with (dict "root" $ "component" "x" "values" .Values.x). */}}
{{- define "portcullis.topologySpread" -}}
{{- if .values.topologySpreadConstraints }}
{{- toYaml .values.topologySpreadConstraints }}
{{- else }}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "portcullis.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
{{- end }}
{{- end -}}

{{/* The Secret holding the upstream-credential keys: the given one, else the generated one. */}}
{{- define "portcullis.credentialKeys.secretName" -}}
{{- default (printf "%s-upstream-credential-keys" (include "portcullis.fullname" .)) .Values.federation.credentialKeys.existingSecret -}}
{{- end -}}
