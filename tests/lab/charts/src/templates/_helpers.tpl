{{/*
Shared helpers of the lab's stand-in circleci-server chart. One template tree serves every server
minor: "cci.is43" gates what changed in 4.3 (vm-service -> machine-provisioner, output-processor ->
output-*, the circleci-proxy ports). Only the values.yaml and values.schema.json differ per minor.
*/}}

{{- define "cci.is43" -}}
{{- if semverCompare ">=4.3.0-0" .Chart.Version }}true{{ end -}}
{{- end -}}

{{/* The Deployment/ServiceAccount name of the machine provisioner of this minor. */}}
{{- define "cci.provisioner.name" -}}
{{- if include "cci.is43" . }}machine-provisioner{{ else }}vm-service{{ end -}}
{{- end -}}

{{/* Its values block: vm_service on 4.2, machine_provisioner on 4.3. */}}
{{- define "cci.provisioner.values" -}}
{{- if include "cci.is43" . }}{{ toYaml (.Values.machine_provisioner | default dict) }}{{ else }}{{ toYaml (.Values.vm_service | default dict) }}{{ end -}}
{{- end -}}

{{/* Labels like the real chart's; call with (dict "ctx" $ "app" "<name>" "layer" "application|data"). */}}
{{- define "cci.labels" -}}
app: {{ .app }}
layer: {{ .layer }}
app.kubernetes.io/name: {{ .app }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .layer }}
app.kubernetes.io/part-of: circleci-server
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{/* Selector labels: the same on every version, since a Deployment's selector is immutable. */}}
{{- define "cci.selector" -}}
app: {{ .app }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{/* An image reference: call with (dict "ctx" $ "name" "<repo>" "tag" "<tag>"). Nothing is pulled. */}}
{{- define "cci.image" -}}
{{- $c := .ctx.Values.global.container | default dict -}}
{{- $registry := $c.registry | default "cciserver.azurecr.io" -}}
{{- if $c.org }}{{ printf "%s/%s/%s:%s" $registry $c.org .name .tag }}{{ else }}{{ printf "%s/%s:%s" $registry .name .tag }}{{ end -}}
{{- end -}}

{{- define "cci.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
A secret value: the one set in values, else a stable value derived from the release (the real chart
generates these once and keeps them; a derived value keeps `helm template` output stable).
Call with (dict "ctx" $ "value" <value or nil> "name" "<secret>/<key>" "length" <n>).
*/}}
{{- define "cci.secretValue" -}}
{{- if .value }}{{ .value | toString | b64enc }}{{ else }}{{ sha256sum (printf "%s/%s/%s" .ctx.Release.Namespace .ctx.Values.global.domainName .name) | trunc (int (.length | default 32)) | b64enc }}{{ end -}}
{{- end -}}

{{/*
The application Deployments of this minor, as a YAML list of {name, replicas, port, tag}.
Names are those of the documentation; replicas come from the <service>.replicas values.
*/}}
{{- define "cci.deployments" -}}
{{- $v := .Values.AsMap -}}
- {name: frontend, replicas: {{ dig "frontend" "replicas" 1 $v }}, port: 80}
- {name: api-service, replicas: {{ dig "api_service" "replicas" 1 $v }}, port: 80}
- {name: contexts-service, replicas: {{ dig "contexts_service" "replicas" 1 $v }}, port: 6005}
- {name: workflows-conductor-event-consumer, replicas: {{ dig "workflows_conductor_event_consumer" "replicas" 1 $v }}}
- {name: workflows-conductor-grpc, replicas: {{ dig "workflows_conductor_grpc" "replicas" 1 $v }}, port: 9090}
- {name: kong, replicas: {{ dig "kong" "replicas" 1 $v }}, port: 8000, image: kong}
- {name: web-ui, replicas: {{ dig "web_ui" "replicas" 1 $v }}, port: 80}
- {name: nginx, replicas: {{ dig "nginx" "replicas" 1 $v }}, image: nginx}
{{- if include "cci.is43" . }}
- {name: output-receiver, replicas: {{ dig "output" "receiver" "replicas" 1 $v }}, port: 8585}
- {name: output-internal, replicas: {{ dig "output" "internal" "replicas" 1 $v }}}
- {name: output-public, replicas: {{ dig "output" "public" "replicas" 1 $v }}}
{{- if dig "docker_provisioner" "enabled" true $v }}
- {name: docker-provisioner, replicas: {{ dig "docker_provisioner" "provisioner" "replicas" 1 $v }}}
{{- end }}
{{- else }}
- {name: output-processor, replicas: {{ dig "output_processor" "replicas" 2 $v }}, port: 8585}
- {name: dispatcher, replicas: {{ dig "dispatcher" "replicas" 1 $v }}}
{{- if dig "vm_service" "enabled" true $v }}
- {name: vm-gc, replicas: {{ dig "vm_gc" "replicas" 1 $v }}}
- {name: vm-scaler, replicas: {{ dig "vm_scaler" "replicas" 1 $v }}}
{{- end }}
{{- end }}
{{- end -}}

{{/* Data of the circleci-config ConfigMap that every application pod reads. */}}
{{- define "cci.config.data" -}}
{{- $os := .Values.object_storage | default dict -}}
CIRCLECI_SERVER_VERSION: {{ .Chart.Version | quote }}
CIRCLE_DOMAIN: {{ .Values.global.domainName | quote }}
CIRCLE_SCHEME: {{ .Values.global.scheme | default "https" | quote }}
CONTEXTS_ENCRYPTION: {{ if (.Values.tink | default dict).enabled }}"tink"{{ else }}"vault"{{ end }}
{{- if not (.Values.tink | default dict).enabled }}
VAULT_URL: {{ (.Values.vault | default dict).url | default "http://vault:8200" | quote }}
VAULT_TRANSIT_PATH: {{ (.Values.vault | default dict).transitPath | default "transit" | quote }}
{{- end }}
OBJECT_STORAGE_BUCKET: {{ $os.bucketName | default "" | quote }}
OBJECT_STORAGE_PROVIDER: {{ if ($os.s3 | default dict).enabled }}"s3"{{ else if ($os.gcs | default dict).enabled }}"gcs"{{ else }}""{{ end }}
{{- with ($os.s3 | default dict) }}
{{- if .enabled }}
S3_ENDPOINT: {{ .endpoint | default "" | quote }}
{{- end }}
{{- end }}
POSTGRES_HOST: {{ (.Values.postgresql | default dict).postgresqlHost | default "postgresql" | quote }}
MONGODB_HOSTS: {{ (.Values.mongodb | default dict).hosts | default "mongodb:27017" | quote }}
NOMAD_SERVER: "nomad-server:4646"
{{- end -}}
