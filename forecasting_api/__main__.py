"""`python -m forecasting_api`: serve the forecasting API on settings.bind_host:forecast_api_port."""

from __future__ import annotations

import uvicorn

from forecasting_api.app import create_app
from meteoflow.logs import start_service
from meteoflow.metrics import service_registry


def main() -> None:
    settings, _log = start_service("forecasting_api")
    app = create_app(settings, service_registry("forecasting_api"))
    # log_config=None: uvicorn's records go through the ECS JSON handlers set up above.
    uvicorn.run(app, host=settings.bind_host, port=settings.forecast_api_port, log_config=None,
                timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
