apiVersion: v1
kind: ConfigMap
metadata:
  name: circleci-config
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" . "app" "circleci-config" "layer" "application") | nindent 4 }}
data:
  {{- include "cci.config.data" . | nindent 2 }}
