select
    count(*) as days,
    min(date) as first_day,
    max(date) as last_day

from {{ ref('kpi_daily') }}
having count(*) > 0
    and count(*) <> {{ dbt.datediff('min(date)', 'max(date)', 'day') }} + 1
