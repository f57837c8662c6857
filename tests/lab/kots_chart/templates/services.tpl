{{- /*
3.x: the chart renders kong's, api-service's and frontend's ClusterIP Services only; the four 3.x
LoadBalancers (traefik, nomad, vm-service, output-processor) came from KOTS's own manifests, outside
the Helm release (the lab seeds them; the migration must annotate them for Helm to adopt them).
4.0: the chart renders vm-service and output-processor as ClusterIP, nomad-server (ClusterIP) in place of
nomad-server-external, kong in place of circleci-server-traefik, and the one circleci-proxy LoadBalancer
(nginx). The KOTS circleci-server-traefik and nomad-server-external LoadBalancers are in no manifest of the
release: Helm leaves them running (seed 001 step 8).
*/ -}}
{{- $root := . -}}
{{- $services := list
  (dict "name" "kong" "app" "kong" "type" "ClusterIP" "ports" (list 8000))
  (dict "name" "api-service" "app" "api-service" "type" "ClusterIP" "ports" (list 80))
  (dict "name" "frontend" "app" "frontend" "type" "ClusterIP" "ports" (list 80)) -}}
{{- if include "cci.is40" . }}
{{- $nginx := .Values.nginx | default dict -}}
{{- $acm := ($nginx.aws_acm | default dict).enabled -}}
{{- $services = concat $services (list
  (dict "name" "nomad-server" "app" "nomad-server" "type" "ClusterIP" "ports" (list 4646 4647 4648))
  (dict "name" "vm-service" "app" "vm-service" "type" "ClusterIP" "ports" (list 3000))
  (dict "name" "output-processor" "app" "output-processor" "type" "ClusterIP" "ports" (list 8585))
  (dict "name" (ternary "circleci-proxy-acm" "circleci-proxy" (not (not $acm))) "app" "nginx" "type" "LoadBalancer" "ports" (list 80 443 4647) "annotations" ($nginx.annotations | default dict))) -}}
{{- end }}
{{- range $s := $services }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $s.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" $s.app "layer" "application") | nindent 4 }}
  {{- with $s.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $s.type }}
  selector:
    {{- include "cci.selector" (dict "ctx" $root "app" $s.app) | nindent 4 }}
  ports:
    {{- range $s.ports }}
    - name: tcp-{{ . }}
      port: {{ . }}
      targetPort: {{ . }}
    {{- end }}
{{- end }}
