{{- /*
The single LoadBalancer in front of the install (`kubectl get service -l app=circleci-proxy`).
4.2 also routes to vm-service (3000) and output-processor (8585); 4.3 only to kong and nomad.
*/ -}}
{{- $nginx := .Values.nginx | default dict -}}
{{- $acm := ($nginx.aws_acm | default dict).enabled -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ if $acm }}circleci-proxy-acm{{ else }}circleci-proxy{{ end }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" . "app" "circleci-proxy" "layer" "application") | nindent 4 }}
  {{- with $nginx.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: LoadBalancer
  {{- with $nginx.loadBalancerIp }}
  loadBalancerIP: {{ . | quote }}
  {{- end }}
  {{- with $nginx.loadBalancerSourceRanges }}
  loadBalancerSourceRanges:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    {{- include "cci.selector" (dict "ctx" . "app" "nginx") | nindent 4 }}
  ports:
    - name: http
      port: 80
      targetPort: 80
    - name: https
      port: 443
      targetPort: 443
    - name: nomad
      port: 4647
      targetPort: 4647
    {{- if not (include "cci.is43" .) }}
    - name: vm-service
      port: 3000
      targetPort: 3000
    - name: output-processor
      port: 8585
      targetPort: 8585
    {{- end }}
