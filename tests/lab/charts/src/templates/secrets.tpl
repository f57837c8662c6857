{{- /*
Secrets the chart creates: from values when set, else generated (here: derived, see cci.secretValue).
Option 2 of the docs (pre-created Secret) is honoured where the docs offer it: an empty value with an
existingSecret, or no value for the license / keysets / GitHub / Tink, creates nothing.
*/ -}}
{{- $root := . -}}
{{- $v := .Values.AsMap -}}
{{- $secrets := list -}}
{{- $secrets = append $secrets (dict "name" "api-token" "data" (dict "api-token" (include "cci.secretValue" (dict "ctx" $root "value" $v.apiToken "name" "api-token" "length" 40)))) -}}
{{- $secrets = append $secrets (dict "name" "session-cookie" "data" (dict "session-cookie-key" (include "cci.secretValue" (dict "ctx" $root "value" $v.sessionCookieKey "name" "session-cookie" "length" 16)))) -}}
{{- $secrets = append $secrets (dict "name" "pusher" "data" (dict "secret" (include "cci.secretValue" (dict "ctx" $root "value" (dig "pusher" "secret" "" $v) "name" "pusher")))) -}}
{{- if dig "nomad" "server" "gossip" "encryption" "enabled" true $v }}
{{- $secrets = append $secrets (dict "name" "nomad-gossip-encryption-key" "data" (dict "gossip-key" (include "cci.secretValue" (dict "ctx" $root "value" (dig "nomad" "server" "gossip" "encryption" "key" "" $v) "name" "gossip-key" "length" 32)))) -}}
{{- end }}
{{- if dig "nomad" "server" "rpc" "mTLS" "enabled" false $v }}
{{- $m := dig "nomad" "server" "rpc" "mTLS" dict $v }}
{{- $secrets = append $secrets (dict "name" "nomad-mtls" "data" (dict "ca.pem" ($m.CACertificate | default "" | b64enc) "cert.pem" ($m.certificate | default "" | b64enc) "key.pem" ($m.privateKey | default "" | b64enc))) -}}
{{- end }}
{{- with dig "global" "license" "" $v }}
{{- $secrets = append $secrets (dict "name" "license" "data" (dict "license" (. | b64enc))) -}}
{{- end }}
{{- if and (dig "keyset" "signing" "" $v) (dig "keyset" "encryption" "" $v) }}
{{- $secrets = append $secrets (dict "name" "signing-keys" "data" (dict "signing-key" (dig "keyset" "signing" "" $v | b64enc) "encryption-key" (dig "keyset" "encryption" "" $v | b64enc))) -}}
{{- end }}
{{- if dig "github" "clientId" "" $v }}
{{- $gh := dict "clientId" (dig "github" "clientId" "" $v | b64enc) "clientSecret" (dig "github" "clientSecret" "" $v | b64enc) -}}
{{- with dig "github" "defaultToken" "" $v }}{{ $_ := set $gh "defaultToken" (. | b64enc) }}{{ end }}
{{- $secrets = append $secrets (dict "name" "github-secret" "data" $gh) -}}
{{- end }}
{{- if and (dig "tink" "enabled" false $v) (dig "tink" "keyset" "" $v) }}
{{- $secrets = append $secrets (dict "name" "tink" "data" (dict "keyset" (dig "tink" "keyset" "" $v | b64enc))) -}}
{{- end }}
{{- if and (not (dig "tink" "enabled" false $v)) (not (dig "vault" "internal" true $v)) (dig "vault" "token" "" $v) }}
{{- $secrets = append $secrets (dict "name" "vault" "data" (dict "token" (dig "vault" "token" "" $v | b64enc))) -}}
{{- end }}
{{- if and (dig "postgresql" "internal" true $v) (not (dig "postgresql" "auth" "existingSecret" "" $v)) }}
{{- $secrets = append $secrets (dict "name" "postgresql" "data" (dict "postgres-password" (include "cci.secretValue" (dict "ctx" $root "value" (dig "postgresql" "auth" "postgresPassword" "" $v) "name" "postgres-password")))) -}}
{{- end }}
{{- if not (dig "mongodb" "auth" "existingSecret" "" $v) }}
{{- $secrets = append $secrets (dict "name" "mongodb-credentials" "data" (dict "mongodb-root-password" (include "cci.secretValue" (dict "ctx" $root "value" (dig "mongodb" "auth" "rootPassword" "" $v) "name" "mongodb-root-password")) "mongodb-password" (include "cci.secretValue" (dict "ctx" $root "value" (dig "mongodb" "auth" "password" "" $v) "name" "mongodb-password")))) -}}
{{- end }}
{{- if not (dig "rabbitmq" "auth" "existingPasswordSecret" "" $v) }}
{{- $secrets = append $secrets (dict "name" "rabbitmq-key" "data" (dict "rabbitmq-password" (include "cci.secretValue" (dict "ctx" $root "value" (dig "rabbitmq" "auth" "password" "" $v) "name" "rabbitmq-password")) "rabbitmq-erlang-cookie" (include "cci.secretValue" (dict "ctx" $root "value" (dig "rabbitmq" "auth" "erlangCookie" "" $v) "name" "rabbitmq-erlang-cookie")))) -}}
{{- end }}
{{- if and (dig "object_storage" "s3" "enabled" false $v) (dig "object_storage" "s3" "accessKey" "" $v) }}
{{- $secrets = append $secrets (dict "name" "object-storage-secret" "data" (dict "s3AccessKey" (dig "object_storage" "s3" "accessKey" "" $v | b64enc) "s3SecretKey" (dig "object_storage" "s3" "secretKey" "" $v | b64enc))) -}}
{{- end }}
{{- range $s := $secrets }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ $s.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cci.labels" (dict "ctx" $root "app" $s.name "layer" "application") | nindent 4 }}
  annotations:
    helm.sh/resource-policy: keep
type: Opaque
data:
  {{- range $k, $val := $s.data }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end }}
