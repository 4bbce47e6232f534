{%- set has_payments = cxloop_source_present('payments') -%}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

customers as (

    select * from {{ ref('stg_crm__customers') }}

),

currency_rates as (

    select * from {{ ref('currency_rates') }}

),

{% if has_payments %}
payments as (

    select * from {{ ref('stg_shop__payments') }}

),

payment_totals as (

    select
        order_id,
        count(*) as payment_attempts,
        sum(case when payment_status = 'failed' then 1 else 0 end) as payment_failures,
        sum(case when payment_status = 'succeeded' then amount else 0 end) as paid_amount

    from payments
    group by order_id

),

last_payments as (

    select
        order_id,
        payment_status as last_payment_status

    from (
        select
            order_id,
            payment_status,
            row_number() over (
                partition by order_id
                order by attempted_at desc, payment_id desc
            ) as attempt_rank
        from payments
    ) as ranked_payments
    where attempt_rank = 1

),
{% endif %}

known_orders as (

    select orders.*

    from orders
    inner join customers
        on orders.customer_key = customers.customer_key

),

converted as (

    select
        known_orders.*,
        {{ cxloop_to_usd('known_orders.total_amount', 'currency_rates.usd_rate') }} as total_usd,
        known_orders.status = 'completed' as is_completed,
        known_orders.status = 'refunded' as is_refunded,
        known_orders.status = 'cancelled' as is_cancelled

    from known_orders
    left join currency_rates
        on known_orders.currency = currency_rates.currency

),

final as (

    select
        converted.order_id,
        converted.customer_key,
        converted.ordered_at,
        converted.order_date,
        converted.status,
        converted.channel,
        converted.currency,
        converted.total_amount,
        converted.discount_amount,
        converted.items,
        converted.total_usd,
        case
            when converted.is_completed then converted.total_usd
            else cast(0 as decimal(18, 2))
        end as net_usd,
        converted.is_completed,
        converted.is_refunded,
        converted.is_cancelled,
        {% if has_payments %}
        cast(coalesce(payment_totals.payment_attempts, 0) as {{ dbt.type_bigint() }}) as payment_attempts,
        cast(coalesce(payment_totals.payment_failures, 0) as {{ dbt.type_bigint() }}) as payment_failures,
        cast(coalesce(payment_totals.paid_amount, 0) as decimal(18, 2)) as paid_amount,
        last_payments.last_payment_status,
        {% else %}
        cast(null as {{ dbt.type_bigint() }}) as payment_attempts,
        cast(null as {{ dbt.type_bigint() }}) as payment_failures,
        cast(null as decimal(18, 2)) as paid_amount,
        cast(null as {{ dbt.type_string() }}) as last_payment_status,
        {% endif %}
        converted.updated_at

    from converted
    {% if has_payments %}
    left join payment_totals
        on converted.order_id = payment_totals.order_id
    left join last_payments
        on converted.order_id = last_payments.order_id
    {% endif %}

)

select * from final
