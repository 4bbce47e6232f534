{#
    One row per customer and cutoff (int_feature_cutoffs) for every customer with a purchase before the
    cutoff. Every input is filtered to data dated before the cutoff, including refunds (an order refunded
    after the cutoff still counts as a purchase as of it) and identity (an anonymous visit stitched to the
    customer by a later login counts from that login on). Each optional source adds its columns only when
    it has data, so the column set follows the sources present.
#}
{%- set has_events = cxloop_source_present('events') -%}
{%- set has_payments = cxloop_source_present('payments') -%}
{%- set has_tickets = cxloop_source_present('tickets') -%}
{%- set has_surveys = cxloop_source_present('surveys') -%}
{%- set has_reviews = cxloop_source_present('reviews') -%}
{%- set has_voc = cxloop_source_present('voc') -%}

with

cutoffs as (

    select cutoff_date, cutoff_role from {{ ref('int_feature_cutoffs') }}

),

customers as (

    select customer_key, cast(signup_at as date) as signup_date from {{ ref('stg_crm__customers') }}

),

purchases as (

    select
        customer_key,
        order_id,
        order_date,
        cast(updated_at as date) as updated_date,
        is_refunded,
        total_usd

    from {{ ref('int_orders_enriched') }}
    where is_completed or is_refunded

),

first_purchases as (

    select customer_key, min(order_date) as first_purchase_date

    from purchases
    group by customer_key

),

purchases_as_of as (

    select
        cutoffs.cutoff_date,
        purchases.customer_key,
        purchases.order_date,
        {{ dbt.datediff('purchases.order_date', 'cutoffs.cutoff_date', 'day') }} as days_ago,
        case
            when purchases.is_refunded and purchases.updated_date < cutoffs.cutoff_date
                then cast(0 as decimal(18, 2))
            else purchases.total_usd
        end as value_usd,
        case
            when purchases.is_refunded and purchases.updated_date < cutoffs.cutoff_date then 1 else 0
        end as refunded,
        case when purchases.order_date = first_purchases.first_purchase_date then 1 else 0 end as first_day

    from cutoffs
    inner join purchases
        on purchases.order_date < cutoffs.cutoff_date
    inner join first_purchases
        on purchases.customer_key = first_purchases.customer_key

),

order_features as (

    select
        cutoff_date,
        customer_key,
        count(*) as orders_count,
        count(distinct order_date) as purchase_days,
        min(days_ago) as recency_days,
        max(days_ago) as first_purchase_age_days,
        sum(value_usd) as monetary_usd,
        sum(case when first_day = 1 then value_usd else 0 end) as first_day_usd,
        sum(refunded) as refunds_count,
        sum(case when days_ago <= 30 then 1 else 0 end) as orders_30d,
        sum(case when days_ago <= 90 then 1 else 0 end) as orders_90d,
        sum(case when days_ago > 90 and days_ago <= 180 then 1 else 0 end) as orders_prev_90d,
        sum(case when days_ago <= 90 then value_usd else 0 end) as revenue_90d,
        sum(case when days_ago > 90 and days_ago <= 180 then value_usd else 0 end) as revenue_prev_90d

    from purchases_as_of
    group by cutoff_date, customer_key

),

{% if has_events %}
identity_known as (

    select anonymous_id, cast(first_identified_at as date) as identified_date

    from {{ ref('int_identities_stitched') }}

),

session_days as (

    {#- A session is the customer's as of a cutoff only if it was known to be theirs by then: an anonymous
        visit stitched to the customer by a later login counts from the day of that login. #}
    select
        sessions.customer_key,
        sessions.session_date as activity_date,
        case
            when identity_known.identified_date > sessions.session_date then identity_known.identified_date
            else sessions.session_date
        end as known_date,
        count(*) as sessions,
        sum(sessions.page_views) as page_views,
        sum(sessions.duration_seconds) as session_seconds

    from {{ ref('sessions') }} as sessions
    left join identity_known
        on sessions.anonymous_id = identity_known.anonymous_id
    where sessions.customer_key is not null
    group by 1, 2, 3

),

session_features as (

    select
        cutoffs.cutoff_date,
        session_days.customer_key,
        min({{ dbt.datediff('session_days.activity_date', 'cutoffs.cutoff_date', 'day') }})
            as days_since_last_session,
        sum(case when {{ dbt.datediff('session_days.activity_date', 'cutoffs.cutoff_date', 'day') }} <= 30
            then session_days.sessions else 0 end) as sessions_30d,
        sum(case when {{ dbt.datediff('session_days.activity_date', 'cutoffs.cutoff_date', 'day') }} <= 90
            then session_days.sessions else 0 end) as sessions_90d,
        sum(case when {{ dbt.datediff('session_days.activity_date', 'cutoffs.cutoff_date', 'day') }} <= 90
            then session_days.page_views else 0 end) as page_views_90d,
        sum(case when {{ dbt.datediff('session_days.activity_date', 'cutoffs.cutoff_date', 'day') }} <= 90
            then session_days.session_seconds else 0 end) as session_seconds_90d

    from cutoffs
    inner join session_days
        on session_days.activity_date < cutoffs.cutoff_date
        and session_days.known_date < cutoffs.cutoff_date
    group by cutoffs.cutoff_date, session_days.customer_key

),

funnel_days as (

    select
        events.customer_key,
        events.event_date as activity_date,
        case
            when events.event_customer_key is null and identity_known.identified_date > events.event_date
                then identity_known.identified_date
            else events.event_date
        end as known_date,
        sum(case when events.event_name = 'Product Viewed' then 1 else 0 end) as product_views,
        sum(case when events.event_name = 'Product Added' then 1 else 0 end) as product_adds,
        sum(case when events.event_name = 'Checkout Started' then 1 else 0 end) as checkouts_started,
        sum(case when events.event_name = 'Order Completed' then 1 else 0 end) as orders_completed

    from {{ ref('int_events_stitched') }} as events
    left join identity_known
        on events.anonymous_id = identity_known.anonymous_id
    where events.customer_key is not null
        and events.event_name in ('Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed')
    group by 1, 2, 3

),

funnel_features as (

    select
        cutoffs.cutoff_date,
        funnel_days.customer_key,
        sum(funnel_days.product_views) as product_views_90d,
        sum(funnel_days.product_adds) as product_adds_90d,
        sum(funnel_days.checkouts_started) as checkouts_started_90d,
        sum(funnel_days.orders_completed) as checkout_orders_90d

    from cutoffs
    inner join funnel_days
        on funnel_days.activity_date < cutoffs.cutoff_date
        and funnel_days.known_date < cutoffs.cutoff_date
        and funnel_days.activity_date >= {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_date') }}
    group by cutoffs.cutoff_date, funnel_days.customer_key

),
{% endif %}

{% if has_payments %}
payment_features as (

    select
        cutoffs.cutoff_date,
        orders.customer_key,
        sum(case when payments.payment_status = 'failed' then 1 else 0 end) as payment_failures,
        sum(case when payments.payment_status = 'failed'
            and payments.attempted_date >= {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_date') }}
            then 1 else 0 end) as payment_failures_90d

    from cutoffs
    inner join {{ ref('stg_shop__payments') }} as payments
        on payments.attempted_date < cutoffs.cutoff_date
    inner join {{ ref('int_orders_enriched') }} as orders
        on payments.order_id = orders.order_id
    group by cutoffs.cutoff_date, orders.customer_key

),
{% endif %}

{% if has_tickets %}
ticket_features as (

    select
        cutoffs.cutoff_date,
        tickets.customer_key,
        count(*) as tickets_count,
        sum(case when tickets.created_date >= {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_date') }}
            then 1 else 0 end) as tickets_90d,
        sum(case when tickets.resolved_at is null or cast(tickets.resolved_at as date) >= cutoffs.cutoff_date
            then 1 else 0 end) as open_tickets,
        avg(case when cast(tickets.resolved_at as date) < cutoffs.cutoff_date
            then cast(tickets.csat as double) end) as csat_avg,
        sum(case when cast(tickets.resolved_at as date) < cutoffs.cutoff_date and tickets.csat <= 2
            then 1 else 0 end) as low_csat_count

    from cutoffs
    inner join {{ ref('stg_support__tickets') }} as tickets
        on tickets.created_date < cutoffs.cutoff_date
    where tickets.customer_key is not null
    group by cutoffs.cutoff_date, tickets.customer_key

),
{% endif %}

{% if has_surveys %}
survey_responses as (

    select
        cutoffs.cutoff_date,
        surveys.customer_key,
        surveys.score,
        row_number() over (
            partition by cutoffs.cutoff_date, surveys.customer_key
            order by surveys.submitted_at desc, surveys.response_id desc
        ) as recency_rank

    from cutoffs
    inner join {{ ref('stg_surveys__responses') }} as surveys
        on surveys.submitted_date < cutoffs.cutoff_date
    where surveys.customer_key is not null

),

survey_features as (

    select
        cutoff_date,
        customer_key,
        count(*) as nps_responses,
        avg(cast(score as double)) as nps_score_avg,
        max(case when recency_rank = 1 then score end) as nps_last_score,
        sum(case when score <= 6 then 1 else 0 end) as nps_detractor_count

    from survey_responses
    group by cutoff_date, customer_key

),
{% endif %}

{% if has_reviews %}
review_features as (

    select
        cutoffs.cutoff_date,
        reviews.customer_key,
        count(*) as reviews_count,
        avg(cast(reviews.rating as double)) as review_rating_avg,
        sum(case when reviews.rating <= 2 then 1 else 0 end) as low_reviews_count

    from cutoffs
    inner join {{ ref('stg_reviews__reviews') }} as reviews
        on reviews.created_date < cutoffs.cutoff_date
    where reviews.customer_key is not null
    group by cutoffs.cutoff_date, reviews.customer_key

),
{% endif %}

{% if has_voc %}
texts_as_of as (

    {#- A ticket is an open complaint as of a cutoff when it was negative and not resolved before the cutoff. #}
    select
        cutoffs.cutoff_date,
        texts.customer_key,
        texts.created_date,
        texts.sentiment_score,
        texts.sentiment_label,
        case
            when texts.source = 'ticket' and texts.sentiment_label = 'negative' and texts.topic_id >= 0
                and (texts.resolved_at is null or cast(texts.resolved_at as date) >= cutoffs.cutoff_date)
                then texts.topic_id
        end as open_complaint_topic,
        row_number() over (
            partition by cutoffs.cutoff_date, texts.customer_key
            order by texts.created_at desc, texts.source, texts.text_id desc
        ) as recency_rank

    from cutoffs
    inner join {{ ref('voc_texts') }} as texts
        on texts.created_date < cutoffs.cutoff_date
    where texts.customer_key is not null

),

text_features as (

    select
        cutoff_date,
        customer_key,
        count(*) as texts_count,
        sum(case when created_date >= {{ dbt.dateadd('day', -90, 'cutoff_date') }} then 1 else 0 end)
            as texts_90d,
        {{ cxloop_share("sentiment_label = 'negative'") }} as negative_share,
        max(case when recency_rank = 1 then sentiment_score end) as last_sentiment,
        count(distinct open_complaint_topic) as open_complaint_topics

    from texts_as_of
    group by cutoff_date, customer_key

),
{% endif %}

final as (

    select
        order_features.customer_key,
        order_features.cutoff_date,
        cutoffs.cutoff_role,
        {{ dbt.datediff(
            'coalesce(case when customers.signup_date < first_purchases.first_purchase_date '
            ~ 'then customers.signup_date end, first_purchases.first_purchase_date)',
            'order_features.cutoff_date', 'day') }} as tenure_days,
        order_features.recency_days,
        order_features.first_purchase_age_days,
        order_features.first_purchase_age_days - order_features.recency_days as purchase_span_days,
        order_features.orders_count,
        order_features.purchase_days - 1 as repeat_purchase_days,
        cast(order_features.monetary_usd as double) as monetary_usd,
        cast(order_features.monetary_usd as double) / order_features.orders_count
            as avg_order_usd,
        case
            when order_features.purchase_days > 1
                then cast(order_features.monetary_usd - order_features.first_day_usd as double)
                    / (order_features.purchase_days - 1)
        end as repeat_avg_order_usd,
        order_features.refunds_count,
        order_features.orders_30d,
        order_features.orders_90d,
        order_features.orders_90d - order_features.orders_prev_90d as orders_trend_90d,
        cast(order_features.revenue_90d as double) as revenue_90d,
        cast(order_features.revenue_90d - order_features.revenue_prev_90d as double)
            as revenue_trend_90d
        {%- if has_events %},
        coalesce(session_features.sessions_30d, 0) as sessions_30d,
        coalesce(session_features.sessions_90d, 0) as sessions_90d,
        coalesce(session_features.page_views_90d, 0) as page_views_90d,
        cast(session_features.session_seconds_90d as double)
            / nullif(session_features.sessions_90d, 0) as avg_session_seconds_90d,
        session_features.days_since_last_session,
        coalesce(funnel_features.product_views_90d, 0) as product_views_90d,
        coalesce(funnel_features.product_adds_90d, 0) as product_adds_90d,
        coalesce(funnel_features.checkouts_started_90d, 0) as checkouts_started_90d,
        case
            when coalesce(funnel_features.checkouts_started_90d, 0) > coalesce(funnel_features.checkout_orders_90d, 0)
                then funnel_features.checkouts_started_90d - coalesce(funnel_features.checkout_orders_90d, 0)
            else 0
        end as abandoned_checkouts_90d
        {%- endif %}
        {%- if has_payments %},
        coalesce(payment_features.payment_failures, 0) as payment_failures,
        coalesce(payment_features.payment_failures_90d, 0) as payment_failures_90d
        {%- endif %}
        {%- if has_tickets %},
        coalesce(ticket_features.tickets_count, 0) as tickets_count,
        coalesce(ticket_features.tickets_90d, 0) as tickets_90d,
        coalesce(ticket_features.open_tickets, 0) as open_tickets,
        ticket_features.csat_avg,
        coalesce(ticket_features.low_csat_count, 0) as low_csat_count
        {%- endif %}
        {%- if has_surveys %},
        coalesce(survey_features.nps_responses, 0) as nps_responses,
        survey_features.nps_score_avg,
        survey_features.nps_last_score,
        coalesce(survey_features.nps_detractor_count, 0) as nps_detractor_count
        {%- endif %}
        {%- if has_reviews %},
        coalesce(review_features.reviews_count, 0) as reviews_count,
        review_features.review_rating_avg,
        coalesce(review_features.low_reviews_count, 0) as low_reviews_count
        {%- endif %}
        {%- if has_voc %},
        coalesce(text_features.texts_90d, 0) as voc_texts_90d,
        text_features.negative_share as voc_negative_share,
        text_features.last_sentiment as voc_last_sentiment,
        coalesce(text_features.open_complaint_topics, 0) as voc_open_complaint_topics
        {%- endif %}

    from order_features
    inner join cutoffs
        on order_features.cutoff_date = cutoffs.cutoff_date
    inner join first_purchases
        on order_features.customer_key = first_purchases.customer_key
    left join customers
        on order_features.customer_key = customers.customer_key
    {%- for name, present in [('session_features', has_events), ('funnel_features', has_events),
                              ('payment_features', has_payments), ('ticket_features', has_tickets),
                              ('survey_features', has_surveys), ('review_features', has_reviews),
                              ('text_features', has_voc)] %}
    {%- if present %}
    left join {{ name }}
        on order_features.customer_key = {{ name }}.customer_key
        and order_features.cutoff_date = {{ name }}.cutoff_date
    {%- endif %}
    {%- endfor %}

)

select * from final
