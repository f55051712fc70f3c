"""The web app's API, one router per page of the UI; webapp.app.create_app includes them all.

    config      GET /health, GET /api/config
    regions     GET /api/regions, GET /api/regions/{id}
    status      GET /api/status
    health      GET /api/health
    incidents   GET /api/incidents, GET /api/incidents/{id}, POST /api/incidents/{id}/ack
    silences    GET /api/silences, POST /api/silences, DELETE /api/silences/{id}
    weather     GET /api/overview
    forecasts   GET /api/regions/{id}/forecast-runs[/{run_at}], GET /api/forecast-quality
    history     GET /api/regions/{id}/history, GET /api/history/yesterday, GET /api/history/rain

Each route declares its `response_model` (meteoflow.contracts.web) and its error responses, and gets
the store, settings and clock as dependencies (webapp.routes.common).
"""

from webapp.routes import config, forecasts, health, history, incidents, regions, silences, status, weather

ROUTERS = (config.router, regions.router, status.router, health.router, incidents.router, silences.router,
           weather.router, forecasts.router, history.router)
