{{- /* The object-storage ServiceAccount (IRSA / Workload Identity for artifacts, test results, DLC on 4.3). */ -}}
{{- $os := .Values.object_storage | default dict -}}
{{- $s3 := $os.s3 | default dict -}}
{{- $gcs := $os.gcs | default dict -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: object-storage
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" . "app" "object-storage" "layer" "application") | nindent 4 }}
  {{- if or (and $s3.enabled $s3.irsaRole) (and $gcs.enabled $gcs.workloadIdentity) }}
  annotations:
    {{- if and $s3.enabled $s3.irsaRole }}
    eks.amazonaws.com/role-arn: {{ $s3.irsaRole | quote }}
    {{- end }}
    {{- if and $gcs.enabled $gcs.workloadIdentity }}
    iam.gke.io/gcp-service-account: {{ $gcs.workloadIdentity | quote }}
    {{- end }}
  {{- end }}
