"""Small, realistic manifests shared by the wpplan tests.

Shaped per docs/reference/deployments.md#deploy-helm-daemonset and
docs/reference/deployments.md#deploy-operator.
"""

from __future__ import annotations

# The Datadog Operator's CR (datadoghq.com/v2alpha1), CWS on, a user override already present.
DATADOG_AGENT = """\
apiVersion: datadoghq.com/v2alpha1
kind: DatadogAgent
metadata:
  name: datadog
  namespace: datadog
spec:
  global:
    clusterName: prod-eu
    site: datadoghq.eu
    credentials:
      apiSecret:
        secretName: datadog-secret
        keyName: api-key
  features:
    cws:
      enabled: true
      network:
        enabled: true
    cspm:
      enabled: false
  override:
    nodeAgent:
      containers:
        system-probe:
          env:
            - name: DD_LOG_LEVEL
              value: "debug"
"""

# The same CR with no features.cws.network and no overrides at all.
DATADOG_AGENT_BARE = """\
apiVersion: datadoghq.com/v2alpha1
kind: DatadogAgent
metadata:
  name: datadog
spec:
  features:
    cws:
      enabled: true
"""

# A Helm-rendered node-agent DaemonSet (chart 3.240.0 shape, trimmed): system-probe gets its CWS
# settings from the mounted system-probe.yaml; security-agent from env.
DAEMONSET_HELM = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: datadog-agent
  namespace: datadog
  labels:
    app.kubernetes.io/managed-by: Helm
    helm.sh/chart: datadog-3.240.0
spec:
  selector:
    matchLabels:
      app: datadog-agent
  template:
    metadata:
      labels:
        app: datadog-agent
        agent.datadoghq.com/component: agent
    spec:
      containers:
        - name: agent
          image: registry.datadoghq.com/agent:7.81.1
          env:
            - name: DD_API_KEY
              valueFrom:
                secretKeyRef:
                  name: datadog-agent
                  key: api-key
        - name: system-probe
          image: registry.datadoghq.com/agent:7.81.1
          command: ["system-probe", "--config=/etc/datadog-agent/system-probe.yaml"]
          env:
            - name: DD_LOG_LEVEL
              value: "INFO"
            - name: HOST_ROOT
              value: /host/root
          volumeMounts:
            - name: sysprobe-config
              mountPath: /etc/datadog-agent/system-probe.yaml
              subPath: system-probe.yaml
        - name: security-agent
          image: registry.datadoghq.com/agent:7.81.1
          command: ["security-agent", "start", "-c=/etc/datadog-agent/datadog.yaml"]
          env:
            - name: DD_LOG_LEVEL
              value: "INFO"
            - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED
              value: "true"
            - name: DD_RUNTIME_SECURITY_CONFIG_POLICIES_DIR
              value: "/etc/datadog-agent/runtime-security.d"
            - name: DD_RUNTIME_SECURITY_CONFIG_SOCKET
              value: /var/run/sysprobe/runtime-security.sock
      volumes:
        - name: sysprobe-config
          configMap:
            name: datadog-agent-system-probe-config
"""

# An Operator-rendered DaemonSet (`<dda>-agent`): the CWS feature's env on every container.
DAEMONSET_OPERATOR = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: datadog-agent
  namespace: datadog
  labels:
    app.kubernetes.io/managed-by: datadog-operator
    agent.datadoghq.com/component: agent
spec:
  selector:
    matchLabels:
      agent.datadoghq.com/component: agent
      app.kubernetes.io/instance: datadog-agent
  template:
    spec:
      hostPID: true
      containers:
        - name: agent
          env:
            - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED
              value: "true"
        - name: system-probe
          env:
            - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED
              value: "true"
            - name: DD_RUNTIME_SECURITY_CONFIG_SOCKET
              value: /var/run/sysprobe/runtime-security.sock
            - name: DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED
              value: "true"
            - name: DD_RUNTIME_SECURITY_CONFIG_POLICIES_DIR
              value: /etc/datadog-agent/runtime-security.d
        - name: security-agent
          env:
            - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED
              value: "true"
"""
