"""Apache Airflow provider for OpenRouter's public Data API datasets."""

__version__ = "0.1.0"
