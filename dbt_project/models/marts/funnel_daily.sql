with

events as (

    select * from {{ ref('int_events_stitched') }}

),

steps as (

    select
        person_key,
        event_date,
        event_at,
        message_id,
        channel,
        case event_name
            when 'Product Viewed' then 1
            when 'Product Added' then 2
            when 'Checkout Started' then 3
            when 'Payment Info Entered' then 4
            when 'Order Completed' then 5
        end as step

    from events
    where person_key is not null
        and event_name in (
            'Product Viewed', 'Product Added', 'Checkout Started', 'Payment Info Entered', 'Order Completed'
        )

),

viewed as (

    select
        person_key,
        event_date,
        coalesce(channel, 'unknown') as channel,
        event_at as viewed_at

    from (
        select
            *,
            row_number() over (
                partition by person_key, event_date
                order by event_at, message_id
            ) as view_rank
        from steps
        where step = 1
    ) as views
    where view_rank = 1

),

added as (

    select
        viewed.person_key,
        viewed.event_date,
        min(steps.event_at) as added_at

    from viewed
    inner join steps
        on viewed.person_key = steps.person_key
        and viewed.event_date = steps.event_date
        and steps.step = 2
        and steps.event_at >= viewed.viewed_at
    group by viewed.person_key, viewed.event_date

),

checkout as (

    select
        added.person_key,
        added.event_date,
        min(steps.event_at) as checkout_at

    from added
    inner join steps
        on added.person_key = steps.person_key
        and added.event_date = steps.event_date
        and steps.step = 3
        and steps.event_at >= added.added_at
    group by added.person_key, added.event_date

),

payment as (

    select
        checkout.person_key,
        checkout.event_date,
        min(steps.event_at) as payment_at

    from checkout
    inner join steps
        on checkout.person_key = steps.person_key
        and checkout.event_date = steps.event_date
        and steps.step = 4
        and steps.event_at >= checkout.checkout_at
    group by checkout.person_key, checkout.event_date

),

ordered as (

    select
        payment.person_key,
        payment.event_date,
        min(steps.event_at) as ordered_at

    from payment
    inner join steps
        on payment.person_key = steps.person_key
        and payment.event_date = steps.event_date
        and steps.step = 5
        and steps.event_at >= payment.payment_at
    group by payment.person_key, payment.event_date

),

person_days as (

    select
        viewed.event_date,
        viewed.channel,
        viewed.person_key,
        case when added.added_at is not null then 1 else 0 end as did_add,
        case when checkout.checkout_at is not null then 1 else 0 end as did_checkout,
        case when payment.payment_at is not null then 1 else 0 end as did_pay,
        case when ordered.ordered_at is not null then 1 else 0 end as did_order

    from viewed
    left join added
        on viewed.person_key = added.person_key
        and viewed.event_date = added.event_date
    left join checkout
        on viewed.person_key = checkout.person_key
        and viewed.event_date = checkout.event_date
    left join payment
        on viewed.person_key = payment.person_key
        and viewed.event_date = payment.event_date
    left join ordered
        on viewed.person_key = ordered.person_key
        and viewed.event_date = ordered.event_date

),

daily as (

    select
        event_date,
        channel,
        count(*) as viewed_users,
        sum(did_add) as added_users,
        sum(did_checkout) as checkout_users,
        sum(did_pay) as payment_users,
        sum(did_order) as ordered_users

    from person_days
    group by event_date, channel

),

final as (

    select
        event_date as date,
        channel,
        cast(viewed_users as {{ dbt.type_bigint() }}) as viewed_users,
        cast(added_users as {{ dbt.type_bigint() }}) as added_users,
        cast(checkout_users as {{ dbt.type_bigint() }}) as checkout_users,
        cast(payment_users as {{ dbt.type_bigint() }}) as payment_users,
        cast(ordered_users as {{ dbt.type_bigint() }}) as ordered_users,
        {{ cxloop_ratio('added_users', 'viewed_users') }} as view_to_add_rate,
        {{ cxloop_ratio('checkout_users', 'added_users') }} as add_to_checkout_rate,
        {{ cxloop_ratio('payment_users', 'checkout_users') }} as checkout_to_payment_rate,
        {{ cxloop_ratio('ordered_users', 'payment_users') }} as payment_to_order_rate,
        {{ cxloop_ratio('ordered_users', 'viewed_users') }} as view_to_order_rate

    from daily

)

select * from final
