{{- /* The application layer: one Deployment (and a ClusterIP Service when it listens) per workload. */ -}}
{{- $root := . -}}
{{- range $w := include "cci.deployments" . | fromYamlArray }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $w.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" $w.name "layer" "application") | nindent 4 }}
spec:
  replicas: {{ int $w.replicas }}
  selector:
    matchLabels:
      {{- include "cci.selector" (dict "ctx" $root "app" $w.name) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "cci.labels" (dict "ctx" $root "app" $w.name "layer" "application") | nindent 8 }}
      annotations:
        checksum/config: {{ include "cci.config.data" $root | sha256sum }}
    spec:
      {{- include "cci.imagePullSecrets" $root | nindent 6 }}
      containers:
        - name: {{ $w.name }}
          image: {{ include "cci.image" (dict "ctx" $root "name" ($w.image | default (printf "server-%s" $w.name)) "tag" $root.Chart.AppVersion) }}
          envFrom:
            - configMapRef:
                name: circleci-config
          env:
            - name: CIRCLECI_SERVICE
              value: {{ $w.name | quote }}
          {{- if $w.port }}
          ports:
            - name: http
              containerPort: {{ $w.port }}
          {{- end }}
{{- if $w.port }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $w.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" $w.name "layer" "application") | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "cci.selector" (dict "ctx" $root "app" $w.name) | nindent 4 }}
  ports:
    - name: http
      port: {{ $w.port }}
      targetPort: {{ $w.port }}
{{- end }}
{{- end }}
