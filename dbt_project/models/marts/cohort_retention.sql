with

customers as (

    select * from {{ ref('customers') }}
    where cohort_month is not null

),

orders as (

    select * from {{ ref('orders') }}

),

cohorts as (

    select
        cohort_month,
        count(*) as cohort_size

    from customers
    group by cohort_month

),

purchases as (

    select
        customers.cohort_month,
        cast({{ dbt.date_trunc('month', 'orders.ordered_at') }} as date) as activity_month,
        orders.customer_key,
        orders.net_usd

    from orders
    inner join customers
        on orders.customer_key = customers.customer_key
    where orders.is_completed

),

monthly as (

    select
        cohort_month,
        activity_month,
        count(distinct customer_key) as active_customers,
        sum(net_usd) as revenue_usd

    from purchases
    group by cohort_month, activity_month

),

bounds as (

    select
        (select min(cohort_month) from cohorts) as start_date,
        (select max(order_date) from orders) as end_date

),

days as (

    {{ cxloop_date_spine('bounds', 'start_date', 'end_date') }}

),

months as (

    select distinct cast({{ dbt.date_trunc('month', 'date_day') }} as date) as activity_month
    from days

),

grid as (

    select
        cohorts.cohort_month,
        cohorts.cohort_size,
        months.activity_month

    from cohorts
    inner join months
        on months.activity_month >= cohorts.cohort_month

),

final as (

    select
        grid.cohort_month,
        cast({{ dbt.datediff('grid.cohort_month', 'grid.activity_month', 'month') }} as integer) as months_since,
        cast(grid.cohort_size as {{ dbt.type_bigint() }}) as cohort_size,
        cast(coalesce(monthly.active_customers, 0) as {{ dbt.type_bigint() }}) as active_customers,
        {{ cxloop_ratio('coalesce(monthly.active_customers, 0)', 'grid.cohort_size') }} as retention_rate,
        cast(coalesce(monthly.revenue_usd, 0) as decimal(18, 2)) as revenue_usd

    from grid
    left join monthly
        on grid.cohort_month = monthly.cohort_month
        and grid.activity_month = monthly.activity_month

)

select * from final
