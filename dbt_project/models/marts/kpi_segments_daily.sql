{%- set has_events = cxloop_source_present('events') -%}
{%- set has_payments = cxloop_source_present('payments') -%}
{%- set has_tickets = cxloop_source_present('tickets') -%}
{%- set has_surveys = cxloop_source_present('surveys') -%}
{%- set has_voc = cxloop_source_present('voc') -%}
{%- set measures = [
    'sessions', 'converted_sessions', 'orders', 'completed_orders', 'revenue_usd', 'booked_usd', 'first_orders',
    'payment_attempts',
    'payment_successes', 'new_customers', 'tickets', 'csat_sum', 'csat_count', 'nps_responses', 'nps_net',
    'viewed_users', 'added_users', 'checkout_users', 'payment_users', 'ordered_users', 'texts', 'negative_texts',
] -%}



with

kpis as (

    select * from {{ ref('kpi_daily') }}

),

orders as (

    select * from {{ ref('orders') }}

),

first_orders as (

    {#- Each customer's first order, whatever became of it: known the day it is placed, unlike a first
        completed order, which often completes a day later. -#}
    select order_date
    from (
        select
            order_date,
            row_number() over (partition by customer_key order by ordered_at, order_id) as order_rank
        from orders
    ) as ranked
    where order_rank = 1

),

{% if has_events %}
sessions as (

    select * from {{ ref('sessions') }}

),

funnel as (

    select * from {{ ref('funnel_daily') }}

),
{% endif %}

{% if has_payments %}
payments as (

    select
        payments.attempted_date,
        payments.payment_method,
        payments.payment_status,
        orders.channel

    from {{ ref('stg_shop__payments') }} as payments
    inner join orders
        on payments.order_id = orders.order_id

),
{% endif %}

{% if has_tickets %}
tickets as (

    select * from {{ ref('stg_support__tickets') }}

),
{% endif %}

{% if has_surveys %}
survey_responses as (

    select * from {{ ref('stg_surveys__responses') }}
    where score is not null

),
{% endif %}

{% if has_voc %}
voc_texts as (

    select * from {{ ref('voc_texts') }}

),
{% endif %}

parts as (

    {{ cxloop_measures_part(measures, 'kpis', 'date', 'all', "'all'", {
        'sessions': 'sum(sessions)', 'converted_sessions': 'sum(converted_sessions)', 'orders': 'sum(orders)',
        'revenue_usd': 'sum(revenue_usd)', 'payment_attempts': 'sum(payment_attempts)',
        'new_customers': 'sum(new_customers)', 'tickets': 'sum(tickets)',
        'nps_responses': 'sum(nps_responses)'}) }}

    union all

    {{ cxloop_measures_part(measures, 'orders', 'order_date', 'all', "'all'", {
        'completed_orders': 'sum(case when is_completed then 1 else 0 end)', 'booked_usd': 'sum(total_usd)'}) }}

    union all

    {{ cxloop_measures_part(measures, 'first_orders', 'order_date', 'all', "'all'", {
        'first_orders': 'count(*)'}) }}

    union all

    {{ cxloop_measures_part(measures, 'orders', 'order_date', 'channel', 'channel', {
        'orders': 'count(*)', 'completed_orders': 'sum(case when is_completed then 1 else 0 end)',
        'revenue_usd': 'sum(net_usd)', 'booked_usd': 'sum(total_usd)'}) }}

    {% if has_events %}
    union all

    {{ cxloop_measures_part(measures, 'sessions', 'session_date', 'channel', 'channel', {
        'sessions': 'count(*)', 'converted_sessions': 'sum(case when converted then 1 else 0 end)'}) }}

    union all

    {{ cxloop_measures_part(measures, 'sessions', 'session_date', 'device_type', "coalesce(device_type, 'unknown')", {
        'sessions': 'count(*)', 'converted_sessions': 'sum(case when converted then 1 else 0 end)'}) }}

    union all

    {{ cxloop_measures_part(measures, 'funnel', 'date', 'all', "'all'", {
        'viewed_users': 'sum(viewed_users)', 'added_users': 'sum(added_users)',
        'checkout_users': 'sum(checkout_users)', 'payment_users': 'sum(payment_users)',
        'ordered_users': 'sum(ordered_users)'}) }}

    union all

    {{ cxloop_measures_part(measures, 'funnel', 'date', 'channel', 'channel', {
        'viewed_users': 'sum(viewed_users)', 'added_users': 'sum(added_users)',
        'checkout_users': 'sum(checkout_users)', 'payment_users': 'sum(payment_users)',
        'ordered_users': 'sum(ordered_users)'}) }}
    {% endif %}

    {% if has_payments %}
    union all

    {{ cxloop_measures_part(measures, 'payments', 'attempted_date', 'all', "'all'", {
        'payment_successes': "sum(case when payment_status = 'succeeded' then 1 else 0 end)"}) }}

    union all

    {{ cxloop_measures_part(measures, 'payments', 'attempted_date', 'payment_method', "coalesce(payment_method, 'unknown')", {
        'payment_attempts': 'count(*)',
        'payment_successes': "sum(case when payment_status = 'succeeded' then 1 else 0 end)"}) }}

    union all

    {{ cxloop_measures_part(measures, 'payments', 'attempted_date', 'channel', 'channel', {
        'payment_attempts': 'count(*)',
        'payment_successes': "sum(case when payment_status = 'succeeded' then 1 else 0 end)"}) }}
    {% endif %}

    {% if has_tickets %}
    union all

    {{ cxloop_measures_part(measures, 'tickets', 'created_date', 'all', "'all'", {
        'csat_sum': 'sum(csat)', 'csat_count': 'count(csat)'}) }}
    {% endif %}

    {% if has_surveys %}
    union all

    {{ cxloop_measures_part(measures, 'survey_responses', 'submitted_date', 'all', "'all'", {
        'nps_net': "sum(case nps_category when 'promoter' then 1 when 'detractor' then -1 else 0 end)"}) }}
    {% endif %}

    {% if has_voc %}
    {%- set text_measures = {
        'texts': 'count(*)',
        'negative_texts': "sum(case when sentiment_label = 'negative' then 1 else 0 end)"} %}
    union all

    {{ cxloop_measures_part(measures, 'voc_texts', 'created_date', 'all', "'all'", text_measures) }}

    union all

    {{ cxloop_measures_part(measures, 'voc_texts', 'created_date', 'topic', 'topic_label', text_measures) }}
    {% endif %}

),

final as (

    select
        date,
        dimension,
        segment,
        {%- for m in measures %}
        sum({{ m }}) as {{ m }}{{ "," if not loop.last }}
        {%- endfor %}

    from parts
    where date is not null
    group by date, dimension, segment

)

select * from final
