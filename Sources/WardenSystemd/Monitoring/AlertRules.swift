/// Prometheus alert rules for vLLM and the gateway, installed for the operator to load (`rule_files:`).
/// `promtool check rules` passes them and `promtool test rules` runs their unit tests (Tests/Monitoring).
public enum AlertRules {
    /// Where `warden install` puts them.
    public static let path = "/usr/share/warden/monitoring/warden-alerts.yml"

    public static let yaml = #"""
    # vLLM Warden alert rules: load with `rule_files: [/usr/share/warden/monitoring/warden-alerts.yml]`.
    # Scrape jobs assumed: job="vllm" (vLLM's /metrics) and job="warden-gateway" (the gateway's admin /metrics).
    groups:
      - name: vllm-warden
        rules:
          - alert: VLLMDown
            expr: up{job="vllm"} == 0
            for: 2m
            labels: {severity: critical}
            annotations:
              summary: vLLM's /metrics has not answered for 2 minutes
              description: "Check `systemctl status vllm` and `journalctl -u vllm`; a failed preflight keeps vLLM from starting."
          - alert: WardenGatewayDown
            expr: up{job="warden-gateway"} == 0
            for: 2m
            labels: {severity: critical}
            annotations:
              summary: the gateway's admin /metrics has not answered for 2 minutes
          - alert: VLLMNotReady
            expr: warden_upstream_ready == 0
            for: 5m
            labels: {severity: critical}
            annotations:
              summary: the gateway has found vLLM unusable for 5 minutes (down, loading, or refusing the gateway's key)
              description: "The gateway's /readyz says why; `journalctl -u warden-gateway` logs each change."
          - alert: VLLMQueueGrowing
            expr: vllm:num_requests_waiting > 10 and deriv(vllm:num_requests_waiting[10m]) > 0
            for: 10m
            labels: {severity: warning}
            annotations:
              summary: "{{ $value }} requests wait in vLLM's queue and the queue keeps growing"
              description: Lower gateway.limits (concurrency, tokens_per_minute) or add capacity.
          - alert: VLLMKVCacheNearlyFull
            expr: vllm:kv_cache_usage_perc > 0.95
            for: 5m
            labels: {severity: warning}
            annotations:
              summary: vLLM's KV cache has been over 95% full for 5 minutes; requests are being preempted or queued
          - alert: WardenGateway5xxRatio
            expr: sum(rate(warden_requests_total{status=~"5.."}[5m])) / sum(rate(warden_requests_total[5m])) > 0.05
            for: 5m
            labels: {severity: warning}
            annotations:
              summary: "{{ $value | humanizePercentage }} of the gateway's answers are 5xx"
          - alert: WardenRefusalSpike
            expr: sum by (reason) (rate(warden_rejections_total{reason!="ban_started"}[5m])) > 1
            for: 10m
            labels: {severity: warning}
            annotations:
              summary: "the gateway refuses more than one request a second for {{ $labels.reason }}"
          - alert: WardenBanSpike
            expr: increase(warden_rejections_total{reason="ban_started"}[15m]) > 5 or warden_bans_active > 50
            labels: {severity: warning}
            annotations:
              summary: many addresses are being banned for bad keys (a credential-stuffing attempt, or a leaked old key)
              description: "`warden bans list` shows them."
          - alert: WardenQuotaNearlyExhausted
            expr: warden_quota_used_ratio > 0.9
            labels: {severity: info}
            annotations:
              summary: "key {{ $labels.key }} has used {{ $value | humanizePercentage }} of its {{ $labels.period }} token quota"
              description: "`warden usage --key {{ $labels.key }}` shows what it used."
          - alert: WardenUsageLedgerFailing
            expr: increase(warden_ledger_write_failures_total[5m]) > 0
            labels: {severity: warning}
            annotations:
              summary: the gateway cannot write its usage ledger (counts are kept in memory and retried)
    """#
}
