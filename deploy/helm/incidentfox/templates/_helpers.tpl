{{/* Names */}}
{{- define "incidentfox.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "incidentfox.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "incidentfox.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "incidentfox.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "incidentfox.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "incidentfox.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "incidentfox.httpPort" -}}3000{{- end -}}

{{/* Labels */}}
{{- define "incidentfox.selectorLabels" -}}
app.kubernetes.io/name: {{ include "incidentfox.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "incidentfox.labels" -}}
helm.sh/chart: {{ include "incidentfox.chart" . }}
{{ include "incidentfox.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The labels of every worker pod, shared or dedicated: what the sandbox NetworkPolicy lets
sandbox pods reach (SANDBOX_PROXY_POD_LABELS) and what the workers' NetworkPolicy selects. */}}
{{- define "incidentfox.workerLabels" -}}
{{ include "incidentfox.selectorLabels" . }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "incidentfox.proxyPodLabels" -}}
{{- $pairs := list -}}
{{- range $k, $v := include "incidentfox.workerLabels" . | fromYaml -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Dedicated teams */}}
{{/* The Deployment suffix and pool label of a dedicated team: `name`, else ORG-TEAM. */}}
{{- define "incidentfox.teamSlug" -}}
{{- default (replace "/" "-" .team) .name -}}
{{- end -}}

{{/* The queue's `stream` label for the HPA. The app labels a dedicated team's stream
`team:ORG/TEAM` (agents/queue.py team_stream), which is not a valid Kubernetes label value, so
the chart's recording rule rewrites it to `team.ORG.TEAM` (ids never hold a dot). */}}
{{- define "incidentfox.streamLabel" -}}
{{- if . -}}
{{- printf "team.%s" (replace "/" "." .) -}}
{{- else -}}
shared
{{- end -}}
{{- end -}}

{{/* Secrets: variable name -> inline value. One list, used by the Secret, the checks and the
ConfigMap's refusal of secrets in extraEnv. */}}
{{- define "incidentfox.inlineSecrets" -}}
{{- $v := .Values -}}
{{- toYaml (dict
  "DATABASE_URL" $v.database.url
  "REDIS_URL" $v.redis.url
  "INCIDENTFOX_SECRET_KEY" $v.secretKey
  "ADMIN_TOKEN" $v.adminToken
  "SLACK_BOT_TOKEN" $v.slack.botToken
  "SLACK_SIGNING_SECRET" $v.slack.signingSecret
  "SLACK_APP_TOKEN" $v.slack.appToken
  "SLACK_CLIENT_SECRET" $v.slack.clientSecret
  "OPENAI_API_KEY" $v.openai.apiKey
  "ANTHROPIC_API_KEY" $v.anthropic.apiKey
  "GITHUB_TOKEN" $v.github.token
  "GITHUB_WEBHOOK_SECRET" $v.github.webhookSecret
  "PAGERDUTY_API_KEY" $v.pagerduty.apiKey
  "PAGERDUTY_WEBHOOK_SECRET" $v.pagerduty.webhookSecret
  "INCIDENTIO_WEBHOOK_SECRET" $v.incidentio.webhookSecret) -}}
{{- end -}}

{{- define "incidentfox.secretName" -}}
{{- default (include "incidentfox.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "incidentfox.socketMode" -}}
{{- if or .Values.slack.appToken .Values.slack.socketMode }}true{{ end -}}
{{- end -}}

{{/* Everything values.schema.json cannot say; included by configmap.yaml, rendered always. */}}
{{- define "incidentfox.validate" -}}
{{- $v := .Values -}}
{{- if $v.existingSecret -}}
{{- range $key, $value := include "incidentfox.inlineSecrets" . | fromYaml -}}
{{- if $value -}}
{{- fail (printf "existingSecret is set, so %s must come from it: leave its inline value empty" $key) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- if not $v.secretKey -}}
{{- fail "secretKey is required (INCIDENTFOX_SECRET_KEY): every pod must share one stable key. Generate one with `openssl rand -base64 32`, or use existingSecret" -}}
{{- end -}}
{{- end -}}
{{- range $name := list "database" "redis" -}}
{{- $conf := index $v $name -}}
{{- if and $conf.url $conf.existingSecret.name -}}
{{- fail (printf "%s.url and %s.existingSecret.name are both set: choose one" $name $name) -}}
{{- end -}}
{{- if not (or $conf.url $conf.existingSecret.name $v.existingSecret) -}}
{{- fail (printf "%s.url (or %s.existingSecret.name) is required: bot and workers share %s" $name $name (ternary "PostgreSQL" "Redis" (eq $name "database"))) -}}
{{- end -}}
{{- end -}}
{{- if and $v.sandbox.enabled (not $v.sandbox.namespace) -}}
{{- fail "sandbox.enabled needs sandbox.namespace: the namespace where SRE-agent sandbox pods run" -}}
{{- end -}}
{{- $seen := dict "shared" "the shared workers" -}}
{{- range $i, $t := $v.dedicatedTeams -}}
{{- $slug := include "incidentfox.teamSlug" $t -}}
{{- if gt (len $slug) 40 -}}
{{- fail (printf "dedicatedTeams[%d] (%s): %q is longer than 40 characters; set a shorter `name`" $i $t.team $slug) -}}
{{- end -}}
{{- if hasKey $seen $slug -}}
{{- fail (printf "dedicatedTeams[%d] (%s): name %q is already used by %s; set another `name`" $i $t.team $slug (get $seen $slug)) -}}
{{- end -}}
{{- $_ := set $seen $slug $t.team -}}
{{- end -}}
{{- end -}}

{{/* One Deployment: the bot, the shared workers or one dedicated team's workers.
Arguments (dict): root, name, component, pool, args, replicas, autoscaling, settings (a bot or
workers block: resources, podAnnotations, nodeSelector, tolerations, affinity, ...). */}}
{{- define "incidentfox.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $s := .settings -}}
{{- $worker := eq .component "worker" -}}
{{- $proxy := and $worker $v.sandbox.enabled -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels:
    {{- include "incidentfox.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    incidentfox.dev/pool: {{ .pool }}
spec:
  {{- if not .autoscaling }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "incidentfox.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
      incidentfox.dev/pool: {{ .pool }}
  template:
    metadata:
      labels:
        {{- include "incidentfox.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        incidentfox.dev/pool: {{ .pool }}
        incidentfox.dev/metrics: "true"
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if not $v.existingSecret }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- end }}
        {{- with $s.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "incidentfox.serviceAccountName" $root }}
      # Only workers with sandboxes talk to the Kubernetes API (they create the sandbox pods).
      automountServiceAccountToken: {{ $proxy }}
      enableServiceLinks: false
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      {{- with $s.terminationGracePeriodSeconds }}
      terminationGracePeriodSeconds: {{ . }}
      {{- end }}
      containers:
        - name: incidentfox
          image: {{ include "incidentfox.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ include "incidentfox.httpPort" $root }}
              protocol: TCP
            {{- if $proxy }}
            - name: model-proxy
              containerPort: {{ $v.sandbox.proxyPort }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "incidentfox.fullname" $root }}
            - secretRef:
                name: {{ include "incidentfox.secretName" $root }}
          env:
            {{- with include "incidentfox.urlEnv" $root }}
            {{- . | nindent 12 }}
            {{- end }}
            - name: WORKER_PROCESSES
              value: {{ ternary $s.processes 0 $worker | quote }}
            {{- if $proxy }}
            # The model proxy's session tokens live in the worker process that issued them, so each
            # sandbox must reach the very pod that made it: its IP, which needs no DNS either.
            - name: SANDBOX_PROXY_HOST
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
            {{- end }}
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          resources:
            {{- toYaml $s.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /data
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: data
          emptyDir:
            sizeLimit: {{ $v.dataDirSizeLimit }}
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.tmpSizeLimit }}
      {{- with $s.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $s.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $s.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* DATABASE_URL and REDIS_URL when they come from another Secret (env wins over envFrom). */}}
{{- define "incidentfox.urlEnv" -}}
{{- $env := list -}}
{{- range $var, $conf := dict "DATABASE_URL" .Values.database "REDIS_URL" .Values.redis -}}
{{- with $conf.existingSecret.name -}}
{{- $ref := dict "secretKeyRef" (dict "name" . "key" $conf.existingSecret.key) -}}
{{- $env = append $env (dict "name" $var "valueFrom" $ref) -}}
{{- end -}}
{{- end -}}
{{- with $env }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* An HPA for a worker Deployment. Arguments (dict): root, name, pool, autoscaling, team. */}}
{{- define "incidentfox.hpa" -}}
{{- $a := .autoscaling -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  labels:
    {{- include "incidentfox.labels" .root | nindent 4 }}
    app.kubernetes.io/component: worker
    incidentfox.dev/pool: {{ .pool }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .name }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- if $a.queue.enabled }}
    {{- $stream := include "incidentfox.streamLabel" .team }}
    {{- if gt (len $stream) 63 }}
    {{- fail (printf "dedicated team %s: its queue label %q is longer than 63 characters, so it cannot scale on queue depth; turn autoscaling.queue off for it" .team $stream) }}
    {{- end }}
    # Runs waiting for a worker (not yet delivered), max over the pods that report it; served by
    # prometheus-adapter from the chart's recording rule (README).
    - type: External
      external:
        metric:
          name: incidentfox_queue_waiting
          selector:
            matchLabels:
              stream: {{ $stream }}
        target:
          type: AverageValue
          averageValue: {{ $a.queue.targetWaitingPerReplica | quote }}
    {{- end }}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
{{- end -}}

{{/* A PodDisruptionBudget. Arguments (dict): root, name, component, pool, pdb. */}}
{{- define "incidentfox.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels:
    {{- include "incidentfox.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  maxUnavailable: {{ .pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "incidentfox.selectorLabels" .root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
      incidentfox.dev/pool: {{ .pool }}
{{- end -}}
