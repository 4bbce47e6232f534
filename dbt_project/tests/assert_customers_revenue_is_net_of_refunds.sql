select
    customer_key,
    gross_revenue_usd,
    refunded_usd,
    net_revenue_usd

from {{ ref('customers') }}
where gross_revenue_usd - refunded_usd <> net_revenue_usd
