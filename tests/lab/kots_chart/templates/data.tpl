{{- /*
The data layer: nomad-server, and (internal Postgres) the postgresql StatefulSet with its `data`
claim, which keeps the PVC data-postgresql-0 that 4.0's StatefulSet takes over, and its Secret
(3.x key postgresql-password, 4.0 key postgres-password). The 3.x charts generated a password the values
did not set; here "generated" is a fixed lab-fake value derived from the release name (stable across
upgrades, as the real charts kept theirs), so that only the cluster knows it. The 3.x mongodb and rabbitmq
Secrets hold their passwords the same way.
*/ -}}
{{- $root := . -}}
{{- $v := .Values.AsMap -}}
{{- $is40 := include "cci.is40" . -}}
{{- $sets := list (dict "name" "nomad-server" "tag" "1.4.3" "replicas" (dig "nomad" "server" "replicas" 3 $v) "ports" (list 4646 4647 4648)) -}}
{{- if dig "postgresql" "internal" true $v }}
{{- $sets = append $sets (dict "name" "postgresql" "tag" (ternary "12.16.0" "11.14.0" (eq $is40 "true")) "replicas" 1 "ports" (list 5432) "claim" "data") -}}
{{- end }}
{{- range $s := $sets }}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $s.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" $s.name "layer" "data") | nindent 4 }}
spec:
  serviceName: {{ $s.name }}
  replicas: {{ int $s.replicas }}
  selector:
    matchLabels:
      {{- include "cci.selector" (dict "ctx" $root "app" $s.name) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "cci.labels" (dict "ctx" $root "app" $s.name "layer" "data") | nindent 8 }}
    spec:
      containers:
        - name: {{ $s.name }}
          image: {{ include "cci.image" (dict "ctx" $root "name" $s.name "tag" $s.tag) }}
          ports:
            {{- range $s.ports }}
            - containerPort: {{ . }}
            {{- end }}
  {{- if $s.claim }}
  volumeClaimTemplates:
    - metadata:
        name: {{ $s.claim }}
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: 8Gi
  {{- end }}
{{- end }}
{{- if dig "postgresql" "internal" true $v }}
---
apiVersion: v1
kind: Secret
metadata:
  name: postgresql
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" "postgresql" "layer" "data") | nindent 4 }}
type: Opaque
data:
  {{- if $is40 }}
  postgres-password: {{ dig "postgresql" "auth" "postgresPassword" "" $v | b64enc | quote }}
  {{- else }}
  postgresql-password: {{ dig "postgresql" "postgresqlPassword" "" $v | default (include "cci.generated" (dict "ctx" $root "what" "pg")) | b64enc | quote }}
  {{- end }}
{{- end }}
{{- range $store := list "mongodb" "rabbitmq" }}
{{- if dig $store "internal" true $v }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ $store }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" $store "layer" "data") | nindent 4 }}
type: Opaque
data:
  {{- if eq $store "mongodb" }}
  mongodb-root-password: {{ dig "mongodb" "auth" "rootPassword" "" $v | default (include "cci.generated" (dict "ctx" $root "what" "mongo-root")) | b64enc | quote }}
  mongodb-password: {{ dig "mongodb" "auth" "password" "" $v | default (include "cci.generated" (dict "ctx" $root "what" "mongo")) | b64enc | quote }}
  {{- else }}
  rabbitmq-password: {{ dig "rabbitmq" "auth" "password" "" $v | default (include "cci.generated" (dict "ctx" $root "what" "rabbit")) | b64enc | quote }}
  rabbitmq-erlang-cookie: {{ dig "rabbitmq" "auth" "erlangCookie" "" $v | default (include "cci.generated" (dict "ctx" $root "what" "cookie")) | b64enc | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- with dig "global" "license" "" $v }}
---
apiVersion: v1
kind: Secret
metadata:
  name: license
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" "license" "layer" "application") | nindent 4 }}
type: Opaque
data:
  license: {{ . | b64enc | quote }}
{{- end }}
