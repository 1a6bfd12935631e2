{{/* Names and labels shared by every template. */}}

{{- define "landmarks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "landmarks.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels on every object; pass a dict with "ctx" (the root) and "component". */}}
{{- define "landmarks.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "landmarks.chart" $ctx }}
app.kubernetes.io/name: {{ include "landmarks.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: landmarks-platform
app.kubernetes.io/component: {{ .component }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "landmarks.namespace" -}}
{{- .Values.namespace.name -}}
{{- end -}}

{{/* Fixed names: the launcher finds these objects by name at run time. */}}
{{- define "landmarks.defaultsConfigMap" -}}landmarks-training-defaults{{- end -}}
{{- define "landmarks.launcherRole" -}}landmarks-tfjob-launcher{{- end -}}

{{- define "landmarks.keySecretName" -}}
{{- $key := .Values.gcp.keySecret -}}
{{- if $key.existingSecret -}}
{{- $key.existingSecret -}}
{{- else -}}
{{- printf "%s-gcp-key" .Values.trainer.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The GCP project Workload Identity runs under, for the IAM commands in NOTES.txt:
gcp.projectId, else a placeholder.
*/}}
{{- define "landmarks.projectId" -}}
{{- default "<PROJECT_ID>" .Values.gcp.projectId -}}
{{- end -}}

{{/*
Fragments of the training pods' spec, as JSON-ready structures. They are built here once so
that the ConfigMap and NOTES.txt agree.
*/}}
{{- define "landmarks.trainingVolumes" -}}
{{- $t := .Values.training -}}
{{- $volumes := list (dict "name" "scratch" "emptyDir" (dict "sizeLimit" $t.scratch.sizeLimit)) -}}
{{- if eq .Values.gcp.auth "keySecret" -}}
{{- $secret := dict "secretName" (include "landmarks.keySecretName" .) "items" (list (dict "key" .Values.gcp.keySecret.secretKey "path" .Values.gcp.keySecret.secretKey)) -}}
{{- $volumes = append $volumes (dict "name" "gcp-key" "secret" $secret) -}}
{{- end -}}
{{- toJson $volumes -}}
{{- end -}}

{{- define "landmarks.trainingVolumeMounts" -}}
{{- $mounts := list (dict "name" "scratch" "mountPath" .Values.training.scratch.mountPath) -}}
{{- if eq .Values.gcp.auth "keySecret" -}}
{{- $mounts = append $mounts (dict "name" "gcp-key" "mountPath" .Values.gcp.keySecret.mountPath "readOnly" true) -}}
{{- end -}}
{{- toJson $mounts -}}
{{- end -}}

{{- define "landmarks.trainingEnv" -}}
{{- $env := list -}}
{{- range .Values.training.env -}}
{{- $env = append $env . -}}
{{- end -}}
{{- if eq .Values.gcp.auth "keySecret" -}}
{{- $path := printf "%s/%s" (trimSuffix "/" .Values.gcp.keySecret.mountPath) .Values.gcp.keySecret.secretKey -}}
{{- $env = append $env (dict "name" "GOOGLE_APPLICATION_CREDENTIALS" "value" $path) -}}
{{- end -}}
{{- toJson $env -}}
{{- end -}}

{{/* Container resources with the GPU limit merged in (GPUs go in limits only). */}}
{{- define "landmarks.trainingResources" -}}
{{- $t := .Values.training -}}
{{- $res := deepCopy $t.resources -}}
{{- if gt (int $t.gpusPerWorker) 0 -}}
{{- $limits := default (dict) (get $res "limits") -}}
{{- $_ := set $limits $t.gpuResourceName (int $t.gpusPerWorker) -}}
{{- $_ := set $res "limits" $limits -}}
{{- end -}}
{{- toJson $res -}}
{{- end -}}
