{%- set cart_hours = var('cxloop_abandoned_cart_hours') -%}
{%- set lookback_days = var('cxloop_abandoned_cart_lookback_days') -%}

with

events as (

    select * from {{ ref('int_events_stitched') }}

),

customers as (

    select * from {{ ref('customers') }}

),

data_end as (

    select max(event_at) as as_of_at from events

),

cart_steps as (

    select
        customer_key,
        event_at,
        message_id,
        product_id,
        case event_name when 'Checkout Started' then 'checkout_started' else 'product_added' end as cart_step

    from events
    where event_name in ('Product Added', 'Checkout Started')
        and customer_key is not null

),

order_events as (

    select
        customer_key,
        event_at

    from events
    where event_name = 'Order Completed'
        and customer_key is not null

),

abandoned as (

    select cart_steps.*

    from cart_steps
    cross join data_end
    where cart_steps.event_at >= {{ dbt.dateadd('day', -lookback_days, 'data_end.as_of_at') }}
        -- Only carts whose waiting time is over: a cart from the last hours may still turn into an order.
        and {{ dbt.dateadd('hour', cart_hours, 'cart_steps.event_at') }} <= data_end.as_of_at
        and not exists (
            select 1
            from order_events
            where order_events.customer_key = cart_steps.customer_key
                and order_events.event_at >= cart_steps.event_at
                and order_events.event_at < {{ dbt.dateadd('hour', cart_hours, 'cart_steps.event_at') }}
        )

),

latest as (

    select
        *,
        row_number() over (
            partition by customer_key
            order by case cart_step when 'checkout_started' then 0 else 1 end, event_at desc, message_id
        ) as cart_rank,
        count(*) over (partition by customer_key) as abandoned_steps

    from abandoned

),

final as (

    select
        latest.customer_key,
        latest.cart_step,
        latest.event_at as abandoned_at,
        latest.product_id,
        cast(latest.abandoned_steps as {{ dbt.type_bigint() }}) as abandoned_steps,
        case latest.cart_step
            when 'checkout_started' then 'checkout started, no order within {{ cart_hours }} h'
            else 'product added to cart, no order within {{ cart_hours }} h'
        end as reason,
        data_end.as_of_at

    from latest
    inner join customers
        on latest.customer_key = customers.customer_key
    cross join data_end
    where latest.cart_rank = 1
        and customers.marketing_consent

)

select * from final
