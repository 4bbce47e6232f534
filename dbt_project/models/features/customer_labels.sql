{#
    What happened in the horizon after each evaluation and training cutoff, for the customers featured as
    of it. Churned: no completed order (one refunded later still counts) placed in the horizon. Horizon net
    revenue: what the horizon's orders are worth today, refunds and cancellations at zero.
#}
{%- set horizon = var('cxloop_horizon_days') | int -%}

with

population as (

    select customer_key, cutoff_date, cutoff_role

    from {{ ref('customer_features') }}
    where cutoff_role in ('evaluate', 'train')

),

orders as (

    select customer_key, order_date, is_completed, is_refunded, net_usd

    from {{ ref('int_orders_enriched') }}

),

horizon_orders as (

    select
        population.customer_key,
        population.cutoff_date,
        sum(case when orders.is_completed or orders.is_refunded then 1 else 0 end) as horizon_orders,
        sum(orders.net_usd) as horizon_net_usd

    from population
    inner join orders
        on population.customer_key = orders.customer_key
        and orders.order_date >= population.cutoff_date
        and orders.order_date < {{ dbt.dateadd('day', horizon, 'population.cutoff_date') }}
    group by population.customer_key, population.cutoff_date

)

select
    population.customer_key,
    population.cutoff_date,
    population.cutoff_role,
    {{ horizon }} as horizon_days,
    cast(coalesce(horizon_orders.horizon_orders, 0) as {{ dbt.type_bigint() }}) as horizon_orders,
    cast(coalesce(horizon_orders.horizon_net_usd, 0) as double) as horizon_net_usd,
    coalesce(horizon_orders.horizon_orders, 0) = 0 as churned

from population
left join horizon_orders
    on population.customer_key = horizon_orders.customer_key
    and population.cutoff_date = horizon_orders.cutoff_date
