"""Parts of the provider that use Airflow at run time (Variables, pools, the object store)."""
