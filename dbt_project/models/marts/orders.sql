with

orders as (

    select * from {{ ref('int_orders_enriched') }}

),

final as (

    select
        order_id,
        customer_key,
        ordered_at,
        order_date,
        status,
        channel,
        currency,
        total_amount,
        discount_amount,
        items,
        total_usd,
        net_usd,
        is_completed,
        is_refunded,
        is_cancelled,
        payment_attempts,
        payment_failures,
        paid_amount,
        last_payment_status,
        updated_at

    from orders

)

select * from final
