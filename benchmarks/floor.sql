-- The engine floor of the data layer: what DuckDB needs to go from the landing files to sessions, daily KPIs
-- and RFM with the platform's rules, written by hand in one script. `benchmarks/floor.py` runs it statement by
-- statement on a fresh database after setting the variables `landing` (the landing directory) and
-- `currency_rates` (the dbt seed's CSV).
--
-- Left out on purpose, because they are what the platform adds on top of the engine: the ledger and
-- exactly-once loading, line numbers, quarantine of bad rows (here DuckDB skips them), pseudonyms and PII
-- masking, the tests and checks, the other marts and the features.

set timezone = 'UTC';

-- Events, newline-delimited JSON, plain or gzipped; malformed lines are skipped.
create table floor_events_raw as
select
    messageId as message_id,
    type as event_type,
    event as event_name,
    anonymousId as anonymous_id,
    userId as customer_id,
    timezone('UTC', try_cast("timestamp" as timestamptz)) as device_ts,
    timezone('UTC', try_cast(sentAt as timestamptz)) as sent_at,
    timezone('UTC', try_cast(receivedAt as timestamptz)) as received_at,
    context.channel as channel,
    context.page.path as page_path,
    properties.order_id as order_id,
    try_cast(properties.revenue as decimal(18, 2)) as revenue,
    try_cast(properties.total as decimal(18, 2)) as total,
    upper(properties.currency) as currency,
    filename as _file
from read_json(
    getvariable('landing') || '/events/*/*.jsonl*',
    format = 'newline_delimited',
    ignore_errors = true,
    filename = true,
    columns = {
        messageId: 'VARCHAR', type: 'VARCHAR', event: 'VARCHAR', anonymousId: 'VARCHAR', userId: 'VARCHAR',
        "timestamp": 'VARCHAR', sentAt: 'VARCHAR', receivedAt: 'VARCHAR',
        context: 'STRUCT(channel VARCHAR, page STRUCT(path VARCHAR))',
        properties: 'STRUCT(order_id VARCHAR, revenue VARCHAR, total VARCHAR, currency VARCHAR)'
    }
);

-- One row per messageId (the first delivery wins), with the clock-skew correction of staging:
-- event_at = receivedAt - (sentAt - timestamp).
create table floor_events as
select
    * exclude (_file),
    coalesce(
        received_at - to_milliseconds(datediff('millisecond', device_ts, sent_at)),
        received_at
    ) as event_at
from floor_events_raw
where message_id is not null and received_at is not null
qualify row_number() over (partition by message_id order by received_at, _file) = 1;

-- Identity stitching: each anonymousId belongs to the first userId it was seen with.
create table floor_identities as
select anonymous_id, arg_min(customer_id, (event_at, message_id)) as customer_id
from floor_events
where anonymous_id is not null and customer_id is not null
group by anonymous_id;

-- Sessionization: a visitor's session ends after 30 minutes without an event.
create table floor_session_events as
with stitched as (
    select
        e.*,
        coalesce(e.customer_id, i.customer_id) as person_id,
        coalesce(e.anonymous_id, e.customer_id) as visitor_id
    from floor_events as e
    left join floor_identities as i using (anonymous_id)
    where e.anonymous_id is not null
),
flagged as (
    select
        *,
        case
            when lag(event_at) over w is null then 1
            when datediff('second', lag(event_at) over w, event_at) > 30 * 60 then 1
            else 0
        end as is_session_start
    from stitched
    window w as (partition by visitor_id order by event_at, message_id)
)
select
    *,
    sum(is_session_start) over (
        partition by visitor_id order by event_at, message_id rows between unbounded preceding and current row
    ) as session_index
from flagged;

create table floor_currency_rates as
select upper(currency) as currency, cast(usd_rate as decimal(18, 8)) as usd_rate
from read_csv(getvariable('currency_rates'), header = true);

create table floor_sessions as
with completed_orders as (
    select
        visitor_id,
        session_index,
        cast(round(coalesce(total, revenue) * r.usd_rate, 2) as decimal(18, 2)) as revenue_usd
    from floor_session_events as e
    left join floor_currency_rates as r on coalesce(e.currency, 'USD') = r.currency
    where event_name = 'Order Completed' and order_id is not null
    qualify row_number() over (partition by order_id order by event_at, message_id) = 1
),
session_orders as (
    select visitor_id, session_index, count(*) as orders_count, sum(revenue_usd) as revenue_usd
    from completed_orders
    group by all
)
select
    s.visitor_id,
    s.session_index,
    max(s.person_id) as customer_id,
    min(s.event_at) as session_start_at,
    max(s.event_at) as session_end_at,
    cast(min(s.event_at) as date) as session_date,
    count(*) as events_count,
    bool_or(s.event_name = 'Order Completed') as converted,
    coalesce(any_value(o.orders_count), 0) as orders_count,
    coalesce(any_value(o.revenue_usd), 0) as revenue_usd
from floor_session_events as s
left join session_orders as o using (visitor_id, session_index)
group by s.visitor_id, s.session_index;

-- The CSV sources: latest version of each key, as staging keeps it. Every file of a source takes the columns
-- of the first file, matched by name (DuckDB stops on a file that lacks one): about three times faster than
-- `union_by_name`, which sniffs every file.
create table floor_customers as
select customer_id, timezone('UTC', signup_at) as signup_at, timezone('UTC', updated_at) as updated_at
from read_csv(
    getvariable('landing') || '/customers/*/*.csv', header = true, filename = true,
    ignore_errors = true, types = {'customer_id': 'VARCHAR', 'signup_at': 'TIMESTAMPTZ', 'updated_at': 'TIMESTAMPTZ'}
)
where customer_id is not null
qualify row_number() over (partition by customer_id order by updated_at desc, filename desc) = 1;

create table floor_orders as
with latest as (
    select
        order_id,
        customer_id,
        timezone('UTC', ordered_at) as ordered_at,
        lower(status) as status,
        upper(currency) as currency,
        cast(total_amount as decimal(18, 2)) as total_amount
    from read_csv(
        getvariable('landing') || '/orders/*/*.csv', header = true, filename = true,
        ignore_errors = true,
        types = {'order_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'ordered_at': 'TIMESTAMPTZ',
                 'updated_at': 'TIMESTAMPTZ', 'total_amount': 'DECIMAL(18,2)', 'status': 'VARCHAR',
                 'currency': 'VARCHAR'}
    )
    where order_id is not null
    qualify row_number() over (partition by order_id order by updated_at desc, filename desc) = 1
)
select
    latest.*,
    cast(ordered_at as date) as order_date,
    cast(round(total_amount * r.usd_rate, 2) as decimal(18, 2)) as total_usd,
    status = 'completed' as is_completed,
    case when status = 'completed' then cast(round(total_amount * r.usd_rate, 2) as decimal(18, 2)) else 0 end
        as net_usd
from latest
inner join floor_customers using (customer_id)
left join floor_currency_rates as r using (currency);

create table floor_payments as
select p.payment_id, p.order_id, cast(p.attempted_at as date) as attempted_date, p.status
from (
    select payment_id, order_id, timezone('UTC', attempted_at) as attempted_at, lower(status) as status
    from read_csv(
        getvariable('landing') || '/payments/*/*.csv', header = true, filename = true,
        ignore_errors = true,
        types = {'payment_id': 'VARCHAR', 'order_id': 'VARCHAR', 'attempted_at': 'TIMESTAMPTZ', 'status': 'VARCHAR'}
    )
    where payment_id is not null
    qualify row_number() over (partition by payment_id order by filename desc) = 1
) as p
inner join floor_orders using (order_id);

create table floor_tickets as
select ticket_id, cast(timezone('UTC', created_at) as date) as created_date, csat
from read_csv(
    getvariable('landing') || '/tickets/*/*.csv', header = true, filename = true,
    ignore_errors = true,
    types = {'ticket_id': 'VARCHAR', 'created_at': 'TIMESTAMPTZ', 'csat': 'INTEGER'}
)
where ticket_id is not null
qualify row_number() over (partition by ticket_id order by filename desc) = 1;

create table floor_surveys as
select response_id, cast(timezone('UTC', submitted_at) as date) as submitted_date, score
from read_csv(
    getvariable('landing') || '/surveys/*/*.csv', header = true, filename = true,
    ignore_errors = true,
    types = {'response_id': 'VARCHAR', 'submitted_at': 'TIMESTAMPTZ', 'score': 'INTEGER'}
)
where response_id is not null
qualify row_number() over (partition by response_id order by filename desc) = 1;

-- Daily KPIs, one row per day from the first to the last day with any activity (kpi_daily).
create table floor_kpi_daily as
with
daily_sessions as (
    select session_date as date, count(*) as sessions, count(*) filter (where converted) as converted_sessions
    from floor_sessions group by all
),
daily_orders as (
    select
        order_date as date,
        count(*) as orders,
        count(*) filter (where is_completed) as completed_orders,
        sum(net_usd) as revenue_usd,
        count(distinct customer_id) as active_customers
    from floor_orders group by all
),
daily_new_customers as (
    select first_purchase as date, count(*) as new_customers
    from (select min(order_date) as first_purchase from floor_orders where is_completed group by customer_id)
    group by all
),
daily_payments as (
    select attempted_date as date, count(*) as payment_attempts,
        count(*) filter (where status = 'succeeded') as payment_successes
    from floor_payments group by all
),
daily_tickets as (
    select created_date as date, count(*) as tickets, avg(csat) as csat_avg from floor_tickets group by all
),
daily_nps as (
    select submitted_date as date, count(*) as nps_responses,
        count(*) filter (where score >= 9) - count(*) filter (where score <= 6) as net_promoters
    from floor_surveys where score is not null group by all
),
bounds as (
    select min(d) as first_day, max(d) as last_day
    from (
        select order_date as d from floor_orders
        union all select session_date from floor_sessions
        union all select attempted_date from floor_payments
        union all select created_date from floor_tickets
        union all select submitted_date from floor_surveys
    )
),
spine as (
    select cast(unnest(generate_series(cast(first_day as timestamp), cast(last_day as timestamp), interval 1 day))
        as date) as date
    from bounds
)
select
    spine.date,
    coalesce(sessions, 0) as sessions,
    coalesce(converted_sessions, 0) as converted_sessions,
    cast(converted_sessions as double) / nullif(sessions, 0) as conversion_rate,
    coalesce(orders, 0) as orders,
    cast(coalesce(revenue_usd, 0) as decimal(18, 2)) as revenue_usd,
    cast(round(revenue_usd / nullif(completed_orders, 0), 2) as decimal(18, 2)) as aov_usd,
    coalesce(payment_attempts, 0) as payment_attempts,
    cast(payment_successes as double) / nullif(payment_attempts, 0) as payment_success_rate,
    coalesce(new_customers, 0) as new_customers,
    coalesce(active_customers, 0) as active_customers,
    coalesce(tickets, 0) as tickets,
    csat_avg,
    coalesce(nps_responses, 0) as nps_responses,
    100 * cast(net_promoters as double) / nullif(nps_responses, 0) as nps
from spine
left join daily_sessions using (date)
left join daily_orders using (date)
left join daily_new_customers using (date)
left join daily_payments using (date)
left join daily_tickets using (date)
left join daily_nps using (date)
order by spine.date;

-- RFM per customer with at least one completed order, scored as the `customers` mart scores it.
create table floor_rfm as
with
as_of as (
    select greatest((select max(ordered_at) from floor_orders), (select max(event_at) from floor_events)) as as_of_at
),
inputs as (
    select
        customer_id,
        datediff('day', max(ordered_at) filter (where is_completed), any_value(as_of_at)) as recency_days,
        count(*) filter (where is_completed) as frequency,
        sum(net_usd) as monetary_usd
    from floor_orders cross join as_of
    group by customer_id
    having count(*) filter (where is_completed) >= 1
),
scored as (
    select
        *,
        ntile(5) over (order by recency_days desc, customer_id) as r_score,
        ntile(5) over (order by frequency, customer_id) as f_score,
        ntile(5) over (order by monetary_usd, customer_id) as m_score
    from inputs
)
select
    *,
    case
        when r_score >= 4 and frequency = 1 then 'New'
        when r_score >= 4 and f_score >= 4 then 'Champions'
        when r_score >= 3 and f_score >= 3 then 'Loyal'
        when r_score >= 3 then 'Potential Loyalist'
        when f_score = 5 then 'Can''t Lose'
        when f_score >= 3 then 'At Risk'
        when r_score = 2 then 'Hibernating'
        else 'Lost'
    end as rfm_segment
from scored;
