"""Asset health diagnosis (docs/health.md).

Pure rules (DGA, thermal ageing, ESS, the index) and the batch job writing
``ads_asset_health``.
"""
