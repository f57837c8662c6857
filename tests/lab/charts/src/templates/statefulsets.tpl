{{- /*
The data layer: StatefulSets with volumeClaimTemplates (the names the Velero pod annotations use),
and the `vault` StatefulSet only while Tink is not enabled ("If tink.enabled is true, vault will not
be deployed"); its `data` claim leaves the PVC `data-vault-0` behind once Tink takes over.
The MongoDB and PostgreSQL images come from <store>.image.{registry,repository,tag} (the tag is the
version the lab's data-store stand-in reports); MongoDB's custom probes (4.10: mongosh) are rendered;
PostgreSQL's data directory (Bitnami's POSTGRESQL_DATA_DIR) from postgresql.postgresqlDataDir.
*/ -}}
{{- $root := . -}}
{{- $v := .Values.AsMap -}}
{{- $sets := list -}}
{{- $nomad := dict "name" "nomad-server" "image" "hashicorp/nomad" "tag" "1.6.3" "replicas" (dig "nomad" "server" "replicas" 3 $v) "ports" (list 4646 4647 4648) "annotations" dict -}}
{{- $sets = append $sets $nomad -}}
{{- if dig "postgresql" "internal" true $v }}
{{- $sets = append $sets (dict "name" "postgresql" "image" (dig "postgresql" "image" "repository" "postgresql" $v) "registry" (dig "postgresql" "image" "registry" "" $v) "tag" (dig "postgresql" "image" "tag" "12.6.0" $v) "replicas" 1 "ports" (list 5432) "claim" "data" "size" (dig "postgresql" "primary" "persistence" "size" "8Gi" $v) "annotations" (dig "postgresql" "primary" "podAnnotations" dict $v) "env" (dict "POSTGRESQL_DATA_DIR" (dig "postgresql" "postgresqlDataDir" "/bitnami/postgresql/data" $v))) -}}
{{- end }}
{{- if dig "mongodb" "internal" true $v }}
{{- $sets = append $sets (dict "name" "mongodb" "image" (dig "mongodb" "image" "repository" "mongodb" $v) "registry" (dig "mongodb" "image" "registry" "" $v) "tag" (dig "mongodb" "image" "tag" "3.6.22-debian-9-r38" $v) "liveness" (dig "mongodb" "customLivenessProbe" dict $v) "readiness" (dig "mongodb" "customReadinessProbe" dict $v) "replicas" 1 "ports" (list 27017) "claim" "datadir" "size" (dig "mongodb" "persistence" "size" "8Gi" $v) "annotations" (dig "mongodb" "podAnnotations" dict $v)) -}}
{{- end }}
{{- if dig "rabbitmq" "internal" true $v }}
{{- $sets = append $sets (dict "name" "rabbitmq" "image" "rabbitmq" "tag" (dig "rabbitmq" "image" "tag" "3.11.16-debian-11-r0" $v) "replicas" (dig "rabbitmq" "replicaCount" 1 $v) "ports" (list 5672 15672) "claim" "data" "size" (dig "rabbitmq" "persistence" "size" "8Gi" $v) "annotations" (dig "rabbitmq" "podAnnotations" dict $v)) -}}
{{- end }}
{{- $sets = append $sets (dict "name" "redis" "image" "redis" "tag" (dig "redis" "image" "tag" "6.2.1-debian-10-r13" $v) "replicas" 1 "ports" (list 6379) "claim" "redis-data" "size" (dig "redis" "master" "persistence" "size" "8Gi" $v) "annotations" (dig "redis" "master" "podAnnotations" dict $v)) -}}
{{- if and (not (dig "tink" "enabled" false $v)) (dig "vault" "internal" true $v) }}
{{- $sets = append $sets (dict "name" "vault" "image" "vault" "tag" "1.8.2" "replicas" 1 "ports" (list 8200) "claim" "data" "size" "10Gi" "sidecar" "vault-unsealer" "annotations" (dig "vault" "podAnnotations" dict $v)) -}}
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
      {{- with $s.annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "cci.imagePullSecrets" $root | nindent 6 }}
      containers:
        - name: {{ $s.name }}
          {{- if $s.registry }}
          image: {{ printf "%s/%s:%s" $s.registry $s.image $s.tag }}
          {{- else }}
          image: {{ include "cci.image" (dict "ctx" $root "name" $s.image "tag" $s.tag) }}
          {{- end }}
          {{- with $s.liveness }}
          livenessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $s.readiness }}
          readinessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $s.env }}
          env:
            {{- range $name, $value := . }}
            - name: {{ $name }}
              value: {{ $value | quote }}
            {{- end }}
          {{- end }}
          ports:
            {{- range $s.ports }}
            - containerPort: {{ . }}
            {{- end }}
          {{- if $s.claim }}
          volumeMounts:
            - name: {{ $s.claim }}
              mountPath: /data
          {{- end }}
        {{- if $s.sidecar }}
        - name: {{ $s.sidecar }}
          image: {{ include "cci.image" (dict "ctx" $root "name" $s.sidecar "tag" $root.Chart.AppVersion) }}
        {{- end }}
  {{- if $s.claim }}
  volumeClaimTemplates:
    - metadata:
        name: {{ $s.claim }}
        labels:
          {{- include "cci.selector" (dict "ctx" $root "app" $s.name) | nindent 10 }}
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: {{ $s.size }}
  {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $s.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" $s.name "layer" "data") | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "cci.selector" (dict "ctx" $root "app" $s.name) | nindent 4 }}
  ports:
    {{- range $s.ports }}
    - name: tcp-{{ . }}
      port: {{ . }}
      targetPort: {{ . }}
    {{- end }}
{{- end }}
