"""Alerting service: rules evaluated against Elasticsearch, incidents posted to Slack
(the native stand-in for Kibana alerting; see elk/kibana/alerting/ for the Kibana form)."""
