"""Forecasting API: FastAPI around Prophet (single and batch forecasts, cached, validated)."""
