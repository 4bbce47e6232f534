-- Every experiment has exactly one control row and one decision; a shipped experiment names a variation.
select
    experiment_id,
    sum(case when is_control then 1 else 0 end) as controls,
    count(distinct decision) as decisions,
    max(case when decision = 'ship' and ship_variation is null then 1 else 0 end) as ship_without_variation

from {{ ref('experiment_results') }}
group by experiment_id
having sum(case when is_control then 1 else 0 end) <> 1
    or count(distinct decision) <> 1
    or max(case when decision = 'ship' and ship_variation is null then 1 else 0 end) = 1
