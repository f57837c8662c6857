{{- /*
The machine provisioner: `vm-service` on 4.2 (values `vm_service`), `machine-provisioner` on 4.3
(values `machine_provisioner`). Its provider settings land in a ConfigMap (credentials left out) so
that a release diff sees a change of EC2 tags (a list on 4.2, a map on 4.3) or of GCP zone(s).
*/ -}}
{{- $is43 := include "cci.is43" . -}}
{{- $name := include "cci.provisioner.name" . -}}
{{- $vals := include "cci.provisioner.values" . | fromYaml -}}
{{- if ne (toString $vals.enabled) "false" }}
{{- $providers := deepCopy ($vals.providers | default dict) -}}
{{- $ec2 := $providers.ec2 | default dict -}}
{{- $gcp := $providers.gcp | default dict -}}
{{- $sa := $gcp.service_account | default dict -}}
{{- $useKeys := and $ec2.enabled $ec2.accessKey -}}
{{- $useGcpKey := and $gcp.enabled $sa.private_key -}}
{{- if and $ec2.tags (not $is43) (kindIs "slice" $ec2.tags) (ne 0 (mod (len $ec2.tags) 2)) }}
{{- fail (printf "vm_service.providers.ec2.tags must list key, value pairs: %d items given" (len $ec2.tags)) }}
{{- end }}
{{- $_ := unset $ec2 "accessKey" }}{{ $_ := unset $ec2 "secretKey" }}
{{- $_ := unset $gcp "service_account" }}
{{- $settings := omit $vals "providers" "replicas" "enabled" "external" "internal" "leader" "provisioner" }}
{{- if not $is43 }}{{ $_ := set $settings "prescaled" ((.Values.vm_scaler | default dict).prescaled | default list) }}{{ end }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" . "app" $name "layer" "application") | nindent 4 }}
  {{- if or $ec2.irsaRole $gcp.workloadIdentity }}
  annotations:
    {{- if $ec2.irsaRole }}
    eks.amazonaws.com/role-arn: {{ $ec2.irsaRole | quote }}
    {{- end }}
    {{- if $gcp.workloadIdentity }}
    iam.gke.io/gcp-service-account: {{ $gcp.workloadIdentity | quote }}
    {{- end }}
  {{- end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}-config
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" . "app" $name "layer" "application") | nindent 4 }}
data:
  providers.yaml: |
    {{- toYaml $providers | nindent 4 }}
  settings.yaml: |
    {{- toYaml $settings | nindent 4 }}
{{- if or $useKeys $useGcpKey }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}-secret
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" . "app" $name "layer" "application") | nindent 4 }}
type: Opaque
data:
  {{- if $useKeys }}
  accessKey: {{ (index $vals.providers.ec2 "accessKey") | b64enc }}
  secretKey: {{ (index $vals.providers.ec2 "secretKey") | default "" | b64enc }}
  {{- end }}
  {{- if $useGcpKey }}
  gcp_sa.json: {{ toJson $vals.providers.gcp.service_account | b64enc }}
  {{- end }}
{{- end }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" . "app" $name "layer" "application") | nindent 4 }}
spec:
  replicas: {{ int (ternary (dig "provisioner" "replicas" 1 $vals) (dig "replicas" 1 $vals) (eq $is43 "true")) }}
  selector:
    matchLabels:
      {{- include "cci.selector" (dict "ctx" . "app" $name) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "cci.labels" (dict "ctx" . "app" $name "layer" "application") | nindent 8 }}
      annotations:
        checksum/config: {{ printf "%s%s" (toYaml $providers) (toYaml $settings) | sha256sum }}
    spec:
      serviceAccountName: {{ $name }}
      {{- include "cci.imagePullSecrets" . | nindent 6 }}
      containers:
        - name: {{ $name }}
          image: {{ include "cci.image" (dict "ctx" . "name" (printf "server-%s" $name) "tag" .Chart.AppVersion) }}
          envFrom:
            - configMapRef:
                name: circleci-config
          env:
            - name: PROVIDERS_CONFIG
              value: /etc/{{ $name }}/providers.yaml
            {{- if $useKeys }}
            - name: AWS_ACCESS_KEY_ID
              valueFrom:
                secretKeyRef: {name: {{ $name }}-secret, key: accessKey}
            - name: AWS_SECRET_ACCESS_KEY
              valueFrom:
                secretKeyRef: {name: {{ $name }}-secret, key: secretKey}
            {{- end }}
          volumeMounts:
            - name: config
              mountPath: /etc/{{ $name }}
      volumes:
        - name: config
          configMap:
            name: {{ $name }}-config
{{- if not $is43 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" . "app" $name "layer" "application") | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "cci.selector" (dict "ctx" . "app" $name) | nindent 4 }}
  ports:
    - name: http
      port: 3000
      targetPort: 3000
{{- end }}
{{- end }}
