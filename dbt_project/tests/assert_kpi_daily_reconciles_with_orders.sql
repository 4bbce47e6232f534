with

kpi as (

    select
        coalesce(sum(orders), 0) as orders,
        coalesce(sum(revenue_usd), 0) as revenue_usd

    from {{ ref('kpi_daily') }}

),

orders as (

    select
        count(*) as orders,
        coalesce(sum(net_usd), 0) as revenue_usd

    from {{ ref('orders') }}

)

select
    kpi.orders as kpi_orders,
    orders.orders as mart_orders,
    kpi.revenue_usd as kpi_revenue_usd,
    orders.revenue_usd as mart_revenue_usd

from kpi
cross join orders
where kpi.orders <> orders.orders
    or kpi.revenue_usd <> orders.revenue_usd
