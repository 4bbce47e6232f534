{%- set has_events = cxloop_source_present('events') -%}
{%- set has_payments = cxloop_source_present('payments') -%}
{%- set has_tickets = cxloop_source_present('tickets') -%}
{%- set has_surveys = cxloop_source_present('surveys') -%}

with

orders as (

    select * from {{ ref('orders') }}

),

{% if has_events %}
sessions as (

    select * from {{ ref('sessions') }}

),

daily_sessions as (

    select
        session_date as date_day,
        count(*) as sessions,
        sum(case when converted then 1 else 0 end) as converted_sessions

    from sessions
    group by session_date

),
{% endif %}

{% if has_payments %}
payments as (

    select payments.*

    from {{ ref('stg_shop__payments') }} as payments
    inner join orders
        on payments.order_id = orders.order_id

),

daily_payments as (

    select
        attempted_date as date_day,
        count(*) as payment_attempts,
        sum(case when payment_status = 'succeeded' then 1 else 0 end) as payment_successes

    from payments
    group by attempted_date

),
{% endif %}

{% if has_tickets %}
tickets as (

    select * from {{ ref('stg_support__tickets') }}

),

daily_tickets as (

    select
        created_date as date_day,
        count(*) as tickets,
        avg(cast(csat as double)) as csat_avg

    from tickets
    group by created_date

),
{% endif %}

{% if has_surveys %}
survey_responses as (

    select * from {{ ref('stg_surveys__responses') }}

),

daily_nps as (

    select
        submitted_date as date_day,
        count(*) as nps_responses,
        sum(case when nps_category = 'promoter' then 1 else 0 end) as promoters,
        sum(case when nps_category = 'detractor' then 1 else 0 end) as detractors

    from survey_responses
    where score is not null
    group by submitted_date

),
{% endif %}

daily_orders as (

    select
        order_date as date_day,
        count(*) as orders,
        sum(case when is_completed then 1 else 0 end) as completed_orders,
        sum(net_usd) as revenue_usd,
        count(distinct customer_key) as active_customers

    from orders
    group by order_date

),

first_purchases as (

    select
        customer_key,
        min(order_date) as first_purchase_date

    from orders
    where is_completed
    group by customer_key

),

daily_new_customers as (

    select
        first_purchase_date as date_day,
        count(*) as new_customers

    from first_purchases
    group by first_purchase_date

),

activity_dates as (

    select order_date as activity_date from orders
    {% if has_events %}
    union all
    select session_date as activity_date from sessions
    {% endif %}
    {% if has_payments %}
    union all
    select attempted_date as activity_date from payments
    {% endif %}
    {% if has_tickets %}
    union all
    select created_date as activity_date from tickets
    {% endif %}
    {% if has_surveys %}
    union all
    select submitted_date as activity_date from survey_responses
    {% endif %}

),

bounds as (

    select
        min(activity_date) as start_date,
        max(activity_date) as end_date

    from activity_dates

),

spine as (

    {{ cxloop_date_spine('bounds', 'start_date', 'end_date') }}

),

final as (

    select
        spine.date_day as date,
        {% if has_events %}
        cast(coalesce(daily_sessions.sessions, 0) as {{ dbt.type_bigint() }}) as sessions,
        cast(coalesce(daily_sessions.converted_sessions, 0) as {{ dbt.type_bigint() }}) as converted_sessions,
        {{ cxloop_ratio('daily_sessions.converted_sessions', 'daily_sessions.sessions') }} as conversion_rate,
        {% else %}
        cast(null as {{ dbt.type_bigint() }}) as sessions,
        cast(null as {{ dbt.type_bigint() }}) as converted_sessions,
        cast(null as double) as conversion_rate,
        {% endif %}
        cast(coalesce(daily_orders.orders, 0) as {{ dbt.type_bigint() }}) as orders,
        cast(coalesce(daily_orders.revenue_usd, 0) as decimal(18, 2)) as revenue_usd,
        cast({{ cxloop_round_ratio('daily_orders.revenue_usd', 'daily_orders.completed_orders', 2) }} as decimal(18, 2)) as aov_usd,
        {% if has_payments %}
        cast(coalesce(daily_payments.payment_attempts, 0) as {{ dbt.type_bigint() }}) as payment_attempts,
        {{ cxloop_ratio('daily_payments.payment_successes', 'daily_payments.payment_attempts') }} as payment_success_rate,
        {% else %}
        cast(null as {{ dbt.type_bigint() }}) as payment_attempts,
        cast(null as double) as payment_success_rate,
        {% endif %}
        cast(coalesce(daily_new_customers.new_customers, 0) as {{ dbt.type_bigint() }}) as new_customers,
        cast(coalesce(daily_orders.active_customers, 0) as {{ dbt.type_bigint() }}) as active_customers,
        {% if has_tickets %}
        cast(coalesce(daily_tickets.tickets, 0) as {{ dbt.type_bigint() }}) as tickets,
        cast(daily_tickets.csat_avg as double) as csat_avg,
        {% else %}
        cast(null as {{ dbt.type_bigint() }}) as tickets,
        cast(null as double) as csat_avg,
        {% endif %}
        {% if has_surveys %}
        cast(coalesce(daily_nps.nps_responses, 0) as {{ dbt.type_bigint() }}) as nps_responses,
        100 * {{ cxloop_ratio('daily_nps.promoters - daily_nps.detractors', 'daily_nps.nps_responses') }} as nps
        {% else %}
        cast(null as {{ dbt.type_bigint() }}) as nps_responses,
        cast(null as double) as nps
        {% endif %}

    from spine
    left join daily_orders
        on spine.date_day = daily_orders.date_day
    left join daily_new_customers
        on spine.date_day = daily_new_customers.date_day
    {% if has_events %}
    left join daily_sessions
        on spine.date_day = daily_sessions.date_day
    {% endif %}
    {% if has_payments %}
    left join daily_payments
        on spine.date_day = daily_payments.date_day
    {% endif %}
    {% if has_tickets %}
    left join daily_tickets
        on spine.date_day = daily_tickets.date_day
    {% endif %}
    {% if has_surveys %}
    left join daily_nps
        on spine.date_day = daily_nps.date_day
    {% endif %}

)

select * from final
