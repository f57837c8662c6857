{{- /* Application Deployments; frontend reads the database connection (POSTGRES_*) the 3.x way. */ -}}
{{- $root := . -}}
{{- $pg := .Values.postgresql | default dict -}}
{{- $pgUser := ternary ((($pg.auth | default dict).username) | default "postgres") ($pg.postgresqlUsername | default "postgres") (eq (include "cci.is40" .) "true") -}}
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
    spec:
      {{- with $root.Values.global.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $w.name }}
          image: {{ include "cci.image" (dict "ctx" $root "name" (printf "server-%s" $w.name) "tag" $root.Chart.AppVersion) }}
          env:
            - name: CIRCLE_DOMAIN
              value: {{ include "cci.domain" $root | quote }}
            {{- if eq $w.name "frontend" }}
            - name: POSTGRES_HOST
              value: {{ $pg.postgresqlHost | default "postgresql" | quote }}
            - name: POSTGRES_PORT
              value: {{ $pg.postgresqlPort | default 5432 | quote }}
            - name: POSTGRES_USERNAME
              value: {{ $pgUser | quote }}
            - name: POSTGRES_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: postgresql
                  key: {{ if include "cci.is40" $root }}postgres-password{{ else }}postgresql-password{{ end }}
            {{- end }}
          ports:
            - name: http
              containerPort: {{ $w.port }}
{{- end }}
