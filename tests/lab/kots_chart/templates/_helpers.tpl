{{/* The lab's KOTS-era stand-in chart: "cci.is40" gates what 4.0 changed (see ../README.md). */}}

{{- define "cci.is40" -}}
{{- if semverCompare ">=4.0.0-0" .Chart.Version }}true{{ end -}}
{{- end -}}

{{- define "cci.labels" -}}
app: {{ .app }}
layer: {{ .layer }}
app.kubernetes.io/name: {{ .app }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{- define "cci.selector" -}}
app: {{ .app }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{- define "cci.image" -}}
{{- $c := .ctx.Values.global.container | default dict -}}
{{- $registry := $c.registry | default "cciserver.azurecr.io" -}}
{{- if $c.org }}{{ printf "%s/%s/%s:%s" $registry $c.org .name .tag }}{{ else }}{{ printf "%s/%s:%s" $registry .name .tag }}{{ end -}}
{{- end -}}

{{- define "cci.domain" -}}
{{- if include "cci.is40" . }}{{ .Values.global.domainName }}{{ else }}{{ .Values.domainName }}{{ end -}}
{{- end -}}

{{/* The application Deployments, as a YAML list of {name, replicas, port}. */}}
{{- define "cci.deployments" -}}
{{- $v := .Values.AsMap -}}
- {name: frontend, replicas: {{ dig "frontend" "replicas" 1 $v }}, port: 80}
- {name: api-service, replicas: {{ dig "api_service" "replicas" 1 $v }}, port: 80}
- {name: kong, replicas: {{ dig "kong" "replicas" 1 $v }}, port: 8000}
- {name: circleci-server-traefik, replicas: 1, port: 443}
- {name: output-processor, replicas: {{ dig "output_processor" "replicas" 1 $v }}, port: 8585}
- {name: vm-service, replicas: 1, port: 3000}
{{- if include "cci.is40" . }}
- {name: nginx, replicas: {{ dig "nginx" "replicas" 1 $v }}, port: 443}
{{- end }}
{{- end -}}

{{/* A password the 3.x chart "generated": lab-fake, stable for a release name. */}}
{{- define "cci.generated" -}}
{{- printf "lab-fake-chart-generated-%s-%s" .what (sha256sum .ctx.Release.Name | trunc 8) -}}
{{- end -}}
